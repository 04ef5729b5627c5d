"""Constant Contact's part of ``segport demo``: the fake server, and a connection and an
export to its "General Interest" list.

The destination the demo uses is pointed at the fake through settings given to it
explicitly, so nothing process-wide (no environment variable) changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from segport_constant_contact.destination import ConstantContact
from segport_constant_contact.fake import GENERAL_INTEREST_LIST_ID, RunningFake, run_fake
from segport_constant_contact.settings import ConstantContactSettings
from service.plugins import DemoDestination, DemoExport, DemoFixture, ServiceInfo

DEMO_LIST_ID = GENERAL_INTEREST_LIST_ID
"""The list the demo export adds contacts to: the fake's "General Interest" list."""


def fake_settings(fake: RunningFake) -> ConstantContactSettings:
    """Settings that point the destination at ``fake`` (its client and its two hosts)."""
    return ConstantContactSettings(
        client_id=fake.state.config.client_id,
        client_secret=fake.state.config.client_secret,
        api_base_url=fake.api_base_url,
        auth_base_url=fake.auth_base_url,
    )


class ConstantContactDemo(DemoFixture):
    """Runs a fake Constant Contact that accepts the service's OAuth callback."""

    destination_key = ConstantContact.key

    @contextmanager
    def start(self, service: ServiceInfo) -> Iterator[DemoDestination]:
        with run_fake(redirect_uris=[service.oauth_callback_url]) as fake:
            yield DemoDestination(
                destination=ConstantContact(fake_settings(fake)),
                server_name="Fake Constant Contact",
                server_url=fake.url,
                connection_name="Demo Constant Contact",
                export=DemoExport(
                    display_name="Demo: newsletter subscribers to General Interest",
                    settings={"listId": DEMO_LIST_ID},
                    field_mapping={
                        "EmailAddress": "email",
                        "FirstName": "first_name",
                        "LastName": "last_name",
                    },
                ),
            )
