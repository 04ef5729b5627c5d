"""Connecting Constant Contact with OAuth: PKCE, the browser's round trip, and refusals."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import replace
from datetime import timedelta

import httpx
import pytest
from segport_constant_contact.fake import RunningFake

from service.api.ids import to_global_id
from service.connections.credentials import open_credentials
from service.connections.oauth import OAuthError
from service.core import Services
from service.domain import ConnectionStatus, utcnow

from .conftest import CallbackServer, approve_at_fake, console_answer, new_connection


async def test_authorization_url_carries_pkce_s256_challenge_scopes_and_our_redirect(
    services: Services, fake: RunningFake
) -> None:
    connection = await new_connection(services)

    url = httpx.URL(await services.oauth.start(connection, "alice"))

    params = url.params
    assert str(url).startswith(f"{fake.url}/oauth2/default/v1/authorize?")
    assert params["code_challenge_method"] == "S256"
    assert set(params["scope"].split()) >= {"contact_data", "offline_access", "account_read"}
    assert params["redirect_uri"] == f"{services.settings.public_url}/oauth/callback"
    assert len(params["state"]) >= 43
    stored = await services.store.consume_oauth_state(params["state"])
    assert stored is not None
    assert stored.connection_id == connection.id
    assert stored.user == "alice"
    digest = hashlib.sha256(stored.code_verifier.encode()).digest()
    assert params["code_challenge"] == base64.urlsafe_b64encode(digest).decode().rstrip("=")
    assert stored.code_verifier not in str(url), "the verifier never leaves the server"
    assert timedelta(seconds=590) < stored.expires_at - utcnow() <= timedelta(seconds=600)


async def test_browser_round_trip_through_the_fake_connects_with_the_account_name(
    services: Services,
) -> None:
    connection = await new_connection(services)
    url = await services.oauth.start(connection, "alice")

    async with httpx.AsyncClient(follow_redirects=True) as browser:
        page = await browser.get(url)

    # SEGPORT_UI_URL unset: the browser lands on the console, told which connection connected.
    assert page.status_code == 200
    assert page.url.path == "/console/"
    assert page.url.params["status"] == "connected"
    assert page.url.params["connection"] == to_global_id("Connection", connection.id)
    saved = await services.store.get_connection(connection.id)
    assert saved is not None
    assert saved.status is ConnectionStatus.CONNECTED
    assert saved.account == "Fake Outfitters"
    assert saved.status_message is None
    tokens = open_credentials(services.cipher, saved.credentials).tokens
    assert tokens is not None
    assert tokens.refresh_token


async def test_callback_sends_the_browser_to_the_ui_with_the_connection_global_id(
    services: Services,
) -> None:
    services.settings = services.settings.model_copy(
        update={"ui_url": "https://ui.example/connections?tab=all"}
    )
    connection = await new_connection(services)
    url = await services.oauth.start(connection, "alice")

    async with httpx.AsyncClient(follow_redirects=False) as browser:
        to_us = await browser.get(url)
        answer = await browser.get(to_us.headers["location"])

    assert answer.status_code == 303
    target = httpx.URL(answer.headers["location"])
    assert str(target).startswith("https://ui.example/connections?")
    global_id = base64.urlsafe_b64encode(f"Connection:{connection.id}".encode()).decode()
    assert target.params["connection"] == global_id.rstrip("=")
    assert target.params["status"] == "connected"
    assert target.params["tab"] == "all"


async def test_reused_state_is_refused_and_changes_nothing(services: Services) -> None:
    flow = services.oauth
    connection = await new_connection(services)
    code, state = await approve_at_fake(await flow.start(connection, "alice"))
    await flow.complete(state, code, "alice")
    before = await services.store.get_connection(connection.id)

    with pytest.raises(OAuthError) as refused:
        await flow.complete(state, code, "alice")

    assert refused.value.code == "STATE_UNKNOWN"
    assert await services.store.get_connection(connection.id) == before


async def test_expired_state_is_refused_and_changes_nothing(services: Services) -> None:
    flow = services.oauth
    connection = await new_connection(services)
    code, state = await approve_at_fake(await flow.start(connection, "alice"))
    pending = await services.store.consume_oauth_state(state)
    assert pending is not None
    await services.store.save_oauth_state(
        replace(pending, expires_at=utcnow() - timedelta(seconds=1))
    )

    with pytest.raises(OAuthError) as refused:
        await flow.complete(state, code, "alice")

    assert refused.value.code == "STATE_EXPIRED"
    assert "600 seconds" in refused.value.message
    assert await services.store.get_connection(connection.id) == connection


async def test_state_started_by_another_user_is_refused_and_stays_usable_by_its_owner(
    services: Services,
) -> None:
    flow = services.oauth
    connection = await new_connection(services)
    code, state = await approve_at_fake(await flow.start(connection, "alice"))

    with pytest.raises(OAuthError) as refused:
        await flow.complete(state, code, "mallory")

    assert refused.value.code == "STATE_FOREIGN"
    assert await services.store.get_connection(connection.id) == connection
    connected = await flow.complete(state, code, "alice")
    assert connected.status is ConnectionStatus.CONNECTED


async def test_authorization_of_a_removed_connection_is_refused(services: Services) -> None:
    flow = services.oauth
    connection = await new_connection(services)
    code, state = await approve_at_fake(await flow.start(connection, "alice"))
    await services.store.delete_connection(connection.id)

    with pytest.raises(OAuthError) as refused:
        await flow.complete(state, code, "alice")

    assert refused.value.code == "CONNECTION_GONE"
    assert await services.store.get_connection(connection.id) is None


async def test_destination_without_oauth_cannot_start_an_authorization(
    services: Services,
) -> None:
    connection = await new_connection(services, destination_type="carrier_pigeon")

    with pytest.raises(OAuthError) as refused:
        await services.oauth.start(connection, "alice")

    assert refused.value.code == "NOT_OAUTH"
    assert "carrier_pigeon" in refused.value.message


async def test_code_refused_by_the_destination_fails_with_its_words_and_changes_nothing(
    services: Services,
) -> None:
    flow = services.oauth
    connection = await new_connection(services)
    _, state = await approve_at_fake(await flow.start(connection, "alice"))

    with pytest.raises(OAuthError) as refused:
        await flow.complete(state, "not-the-code", "alice")

    assert refused.value.code == "EXCHANGE_FAILED"
    assert "the authorization code is invalid or has been used" in refused.value.message
    assert await services.store.get_connection(connection.id) == connection


async def test_callback_with_an_unknown_state_sends_the_console_a_clear_error(
    services: Services, callback_server: CallbackServer
) -> None:
    async with httpx.AsyncClient() as browser:
        page = await browser.get(
            f"{callback_server.url}/oauth/callback", params={"state": "forged", "code": "x"}
        )

    told = console_answer(page, callback_server.url)
    assert told["error"] == "STATE_UNKNOWN"
    assert "start connecting again" in told["message"]


async def test_callback_without_a_code_names_the_missing_parameter(
    services: Services, callback_server: CallbackServer
) -> None:
    async with httpx.AsyncClient() as browser:
        page = await browser.get(f"{callback_server.url}/oauth/callback", params={"state": "s"})

    told = console_answer(page, callback_server.url)
    assert told["error"] == "MISSING_PARAMETER"
    assert "'code'" in told["message"]


async def test_provider_refusal_reaches_the_console_as_text_and_spends_the_state(
    services: Services, callback_server: CallbackServer
) -> None:
    flow = services.oauth
    connection = await new_connection(services)
    state = httpx.URL(await flow.start(connection, "alice")).params["state"]

    async with httpx.AsyncClient() as browser:
        page = await browser.get(
            f"{callback_server.url}/oauth/callback",
            params={
                "state": state,
                "error": "access_denied",
                "error_description": "<script>alert(1)</script> said no",
            },
        )

    # Query-encoded in the redirect; the console shows it as text, never as markup.
    told = console_answer(page, callback_server.url)
    assert told["error"] == "AUTHORIZATION_DENIED"
    assert "<script>alert(1)</script> said no" in told["message"]
    assert "<script>" not in page.headers["location"]
    assert await services.store.consume_oauth_state(state) is None
    # Nothing else changes than the refusal recorded as the status message (issue 10, 21).
    saved = await services.store.get_connection(connection.id)
    assert saved is not None
    assert saved == replace(
        connection, status_message=saved.status_message, updated_at=saved.updated_at
    )


async def test_user_denying_at_the_fake_sends_the_ui_an_error_code(
    services: Services, fake: RunningFake
) -> None:
    services.settings = services.settings.model_copy(update={"ui_url": "https://ui.example/"})
    fake.state.configure(consent_page=True)
    connection = await new_connection(services)
    params = dict(httpx.URL(await services.oauth.start(connection, "alice")).params)

    async with httpx.AsyncClient(follow_redirects=False) as browser:
        denied = await browser.post(
            f"{fake.url}/oauth2/default/v1/authorize", data={**params, "decision": "deny"}
        )
        answer = await browser.get(denied.headers["location"])

    assert answer.status_code == 303
    target = httpx.URL(answer.headers["location"])
    assert target.params["error"] == "AUTHORIZATION_DENIED"
    saved = await services.store.get_connection(connection.id)
    assert saved is not None
    assert saved.status is ConnectionStatus.PENDING_AUTHORIZATION
