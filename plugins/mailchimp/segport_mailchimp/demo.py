"""Mailchimp's part of ``segport demo``: the fake Mailchimp, a connection with its demo
API key, and an export to its "Newsletter" audience. The fake's registered app is
configured too, so that an admin can also add a Mailchimp connection by OAuth2 in the
demo's console (the fake approves at once).

The destination the demo uses is pointed at the fake through settings given to it
explicitly, so nothing process-wide (no environment variable) changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from segport_mailchimp.destination import Mailchimp
from segport_mailchimp.fake import DEMO_API_KEY, NEWSLETTER_LIST_ID, RunningFake, run_fake
from segport_mailchimp.settings import MailchimpSettings
from service.plugins import DemoDestination, DemoExport, DemoFixture, ServiceInfo


def fake_settings(fake: RunningFake) -> MailchimpSettings:
    """Settings that point the destination at ``fake`` (its API and its OAuth2 app)."""
    return MailchimpSettings(
        api_base_url=fake.api_base_url,
        oauth_base_url=fake.url,
        client_id=fake.state.config.client_id,
        client_secret=fake.state.config.client_secret,
    )


class MailchimpDemo(DemoFixture):
    """Runs a fake Mailchimp; the demo connects with the fake's API key."""

    destination_key = Mailchimp.key

    @contextmanager
    def start(self, service: ServiceInfo) -> Iterator[DemoDestination]:
        with run_fake() as fake:
            yield DemoDestination(
                destination=Mailchimp(fake_settings(fake)),
                server_name="Fake Mailchimp",
                server_url=fake.url,
                connection_name="Demo Mailchimp",
                export=DemoExport(
                    display_name="Demo: newsletter subscribers to the Mailchimp Newsletter",
                    settings={"listId": NEWSLETTER_LIST_ID, "statusIfNew": "subscribed"},
                    field_mapping={
                        "EmailAddress": "email_address",
                        "FirstName": "FNAME",
                        "LastName": "LNAME",
                    },
                ),
                connection_secrets={"apiKey": DEMO_API_KEY},
            )
