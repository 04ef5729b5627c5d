"""An admin who refuses access on the destination's page (issue 10, item 21).

The whole round trip runs for real: GraphQL hands out the authorization URL, the
browser (an httpx client) answers the fake Constant Contact's consent page with
"Deny", the fake redirects to our ``/oauth/callback`` with ``error=access_denied``,
and GraphQL then shows why the connection is still not connected.
"""

from __future__ import annotations

import httpx
from segport_constant_contact.fake import RunningFake

from service.core import Services

from .conftest import CallbackServer, console_answer
from .gql_client import GraphQLClient


async def answer_consent(
    fake: RunningFake, authorization_url: str, decision: str
) -> httpx.Response:
    """The browser at the fake's consent page choosing ``decision``, then back at our
    callback: the callback's answer (the page, or the redirect to the UI)."""
    fake.state.configure(consent_page=True)
    params = dict(httpx.URL(authorization_url).params)
    async with httpx.AsyncClient(follow_redirects=False) as browser:
        consent = await browser.get(authorization_url)
        assert consent.status_code == 200
        assert "Deny" in consent.text
        to_us = await browser.post(
            f"{fake.url}/oauth2/default/v1/authorize", data={**params, "decision": decision}
        )
        assert to_us.status_code == 302, to_us.text
        return await browser.get(to_us.headers["location"])


async def test_refusal_is_recorded_on_the_connection_and_the_console_is_told_what_to_do_next(
    services: Services, fake: RunningFake, callback_server: CallbackServer
) -> None:
    gql = GraphQLClient(callback_server.url, services)
    connection_id = await gql.create_connection()
    before = await gql.connection(connection_id)
    assert before["statusMessage"] is None

    page = await answer_consent(fake, await gql.authorize(connection_id), "deny")

    told = console_answer(page, callback_server.url)
    assert told["error"] == "AUTHORIZATION_DENIED"
    assert told["connection"] == connection_id
    assert "refused at Constant Contact (access_denied)" in told["message"]
    assert "authorizeConnection" in told["message"]
    after = await gql.connection(connection_id)
    assert after["status"] == "PENDING_AUTHORIZATION"
    message = after["statusMessage"]
    assert message is not None
    assert "The authorization was refused at Constant Contact (access_denied)" in message
    assert "an admin starts authorizeConnection again" in message
    assert after["updatedAt"] > before["updatedAt"]


async def test_the_ui_is_sent_the_connection_and_the_next_step(
    services: Services, fake: RunningFake, callback_server: CallbackServer
) -> None:
    services.settings = services.settings.model_copy(update={"ui_url": "https://ui.example/c"})
    gql = GraphQLClient(callback_server.url, services)
    connection_id = await gql.create_connection()

    answer = await answer_consent(fake, await gql.authorize(connection_id), "deny")

    assert answer.status_code == 303
    target = httpx.URL(answer.headers["location"])
    assert str(target).startswith("https://ui.example/c?")
    assert target.params["error"] == "AUTHORIZATION_DENIED"
    assert target.params["connection"] == connection_id
    assert "authorizeConnection again" in target.params["message"]
    assert (await gql.connection(connection_id))["statusMessage"] == target.params["message"]


async def test_allowing_afterwards_connects_and_clears_the_message(
    services: Services, fake: RunningFake, callback_server: CallbackServer
) -> None:
    gql = GraphQLClient(callback_server.url, services)
    connection_id = await gql.create_connection()
    await answer_consent(fake, await gql.authorize(connection_id), "deny")

    page = await answer_consent(fake, await gql.authorize(connection_id), "approve")

    assert console_answer(page, callback_server.url)["status"] == "connected"
    after = await gql.connection(connection_id)
    assert after["status"] == "CONNECTED"
    assert after["statusMessage"] is None


async def test_refusing_a_new_authorization_of_a_connected_connection_leaves_it_working(
    services: Services, fake: RunningFake, callback_server: CallbackServer
) -> None:
    gql = GraphQLClient(callback_server.url, services)
    connection_id = await gql.create_connection()
    await answer_consent(fake, await gql.authorize(connection_id), "approve")
    connected = await gql.connection(connection_id)

    page = await answer_consent(fake, await gql.authorize(connection_id), "deny")

    told = console_answer(page, callback_server.url)
    assert told["error"] == "AUTHORIZATION_DENIED"
    assert "keeps the authorization it had" in told["message"]
    assert await gql.connection(connection_id) == connected
