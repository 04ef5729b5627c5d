"""Constant Contact's demo fixture: a fake that accepts the service's callback, and a
destination pointed at it by explicit settings, with an export the destination accepts."""

from __future__ import annotations

from pathlib import Path

import httpx
from segport_constant_contact import ConstantContact
from segport_constant_contact.demo import DEMO_LIST_ID, ConstantContactDemo
from segport_constant_contact.fake import GENERAL_INTEREST_LIST_ID
from segport_constant_contact.plugin import register_demo_fixtures

from service.plugins import DEMO_PROFILE_ATTRIBUTES, ServiceInfo
from service.plugins.testing import discover_destinations

SERVICE = ServiceInfo(
    public_url="http://127.0.0.1:8123",
    oauth_callback_url="http://127.0.0.1:8123/oauth/callback",
    mode="embedded",
    data_dir=Path("demo-data"),
)


def test_the_plugin_offers_the_constant_contact_demo() -> None:
    [fixture] = register_demo_fixtures()
    assert isinstance(fixture, ConstantContactDemo)
    assert fixture.destination_key == "constant_contact"
    assert "constant_contact" in discover_destinations()


def test_the_demo_destination_talks_to_the_fake_by_its_own_settings() -> None:
    with ConstantContactDemo().start(SERVICE) as demo:
        destination = demo.destination
        assert isinstance(destination, ConstantContact)
        assert destination.settings.api_base_url == f"{demo.server_url}/v3"
        assert destination.settings.auth_base_url == demo.server_url
        answer = httpx.get(f"{demo.server_url}/__fake__/stats")
    assert answer.status_code == 200
    assert DEMO_LIST_ID in answer.json()["lists"]
    assert (demo.server_name, demo.connection_name) == (
        "Fake Constant Contact",
        "Demo Constant Contact",
    )


def test_the_fake_approves_the_services_callback_at_once() -> None:
    with ConstantContactDemo().start(SERVICE) as demo:
        url = demo.destination.authorization_url(
            state="s" * 20,
            code_challenge="c" * 43,
            redirect_uri=SERVICE.oauth_callback_url,
            settings={},
        )
        answer = httpx.get(url, follow_redirects=False)
    assert answer.status_code == 302
    assert answer.headers["location"].startswith(SERVICE.oauth_callback_url + "?code=")


def test_the_demo_export_is_one_the_destination_accepts() -> None:
    with ConstantContactDemo().start(SERVICE) as demo:
        export = demo.export
        destination = demo.destination
    assert export.settings == {"listId": GENERAL_INTEREST_LIST_ID}
    assert destination.validate_export_settings(export.settings) == []
    assert destination.validate_mapping(list(export.field_mapping.values())) == []
    assert set(export.field_mapping) <= set(DEMO_PROFILE_ATTRIBUTES)
    assert demo.connection_settings == {}
