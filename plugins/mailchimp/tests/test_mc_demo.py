"""Mailchimp's part of ``segport demo``: a fake Mailchimp, and a connection made with its
API key to an export of the Newsletter audience."""

from __future__ import annotations

import httpx
from mc_support import http  # noqa: F401 (fixtures, see pyproject)
from segport_mailchimp import Mailchimp
from segport_mailchimp.demo import MailchimpDemo
from segport_mailchimp.fake import NEWSLETTER_LIST_ID

from service.plugins import DEMO_PROFILE_ATTRIBUTES, ServiceInfo
from service.plugins.testing import InMemoryCredentials, make_context

SERVICE = ServiceInfo(
    public_url="http://127.0.0.1:8000",
    oauth_callback_url="http://127.0.0.1:8000/oauth/callback",
    mode="embedded",
    data_dir=None,
)


async def test_the_demo_connects_with_the_fakes_key_and_exports_to_its_newsletter(
    http: httpx.AsyncClient,
) -> None:
    with MailchimpDemo().start(SERVICE) as demo:
        destination = demo.destination
        assert isinstance(destination, Mailchimp)
        assert destination.settings.api_base_url == f"{demo.server_url}/{{dc}}/3.0"
        credentials = InMemoryCredentials(secrets=demo.connection_secrets)
        ctx = make_context(destination, http, credentials=credentials)
        assert await destination.verify_connection(ctx) == "Fake Mailchimp Co."
        export = demo.export
        assert destination.validate_export_settings(export.settings) == []
        assert export.settings["listId"] == NEWSLETTER_LIST_ID
        assert set(export.field_mapping) <= set(DEMO_PROFILE_ATTRIBUTES)
        assert destination.validate_mapping(list(export.field_mapping.values())) == []
    assert demo.connection_name == "Demo Mailchimp"
