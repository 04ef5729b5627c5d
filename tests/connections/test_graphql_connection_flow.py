"""Connecting Constant Contact and creating an export through GraphQL, as a browser would.

The real app is served by uvicorn, the real plugin (installed through its entry
point) talks to the fake Constant Contact over HTTP, and the browser is an
httpx client that visits the authorization URL GraphQL hands out.
"""

from __future__ import annotations

import httpx
from segport_constant_contact.fake import RunningFake

from service.api.ids import from_global_id
from service.connections.credentials import open_credentials
from service.core import Services
from service.domain import Role

from .conftest import CallbackServer, approve_at_fake
from .gql_client import (
    ADD_EXPORT_USER,
    COMPLETE_AUTHORIZATION,
    CREATE_EXPORT,
    SETTING_CHOICES,
    GraphQLClient,
    export_input,
)

GENERAL_INTEREST = "07936f78-662a-11eb-af0a-fa163e56c9b0"
NEWSLETTER = "8a2b3c4d-0000-4000-8000-00000000a001"
ABSENT_LIST = "3f1e2d4c-5b6a-4789-8abc-def012345678"
"""A well-formed list id the fake's account does not have."""


def client(callback_server: CallbackServer, services: Services) -> GraphQLClient:
    return GraphQLClient(callback_server.url, services)


async def stored_secrets(services: Services, connection_id: str, fake: RunningFake) -> list[str]:
    """The connection's access and refresh tokens as stored, and the application's secret."""
    _, raw_id = from_global_id(connection_id)
    record = await services.store.get_connection(raw_id)
    assert record is not None
    tokens = open_credentials(services.cipher, record.credentials).tokens
    assert tokens is not None
    assert tokens.refresh_token
    return [tokens.access_token, tokens.refresh_token, fake.state.config.client_secret]


async def test_admin_connects_through_the_browser_then_exports_to_a_list_the_picker_offers(
    services: Services, fake: RunningFake, callback_server: CallbackServer
) -> None:
    gql = client(callback_server, services)
    members = {f"member{n}@example.com" for n in range(3)}
    with fake.state.lock:
        fake.state.lists[NEWSLETTER].members.update(members)

    connection_id = await gql.create_connection()
    url = await gql.authorize(connection_id)
    async with httpx.AsyncClient(follow_redirects=True) as browser:
        page = await browser.get(url)

    # The fake approved and sent the browser to our callback, which sent it on to the
    # console (SEGPORT_UI_URL unset), naming the connection.
    assert page.status_code == 200
    assert page.url.path == "/console/"
    assert page.url.params["status"] == "connected"
    assert page.url.params["connection"] == connection_id
    connection = await gql.connection(connection_id)
    assert connection["status"] == "CONNECTED"
    assert connection["account"] == "Fake Outfitters"
    assert connection["statusMessage"] is None

    added = (await gql.data(ADD_EXPORT_USER, {"id": connection_id}))["addExportUser"]
    assert added == {"connection": {"id": connection_id, "exportUser": "alice"}, "userErrors": []}

    choices = (
        await gql.data(SETTING_CHOICES, {"connectionId": connection_id, "setting": "listId"})
    )["exportSettingChoices"]
    assert sorted(choices, key=lambda c: c["name"]) == [
        {"id": GENERAL_INTEREST, "name": "General Interest", "memberCount": 0},
        {"id": NEWSLETTER, "name": "Newsletter", "memberCount": 3},
    ]
    # A contributor may pick too: the connection is usable by contributors.
    as_contributor = await gql.data(
        SETTING_CHOICES,
        {"connectionId": connection_id, "setting": "listId"},
        sub="carol",
        role=Role.CONTRIBUTOR,
    )
    assert as_contributor["exportSettingChoices"] == choices

    segment_id = await gql.segment()
    created = (
        await gql.data(
            CREATE_EXPORT, {"input": export_input(connection_id, segment_id, choices[0]["id"])}
        )
    )["createExport"]
    assert created["userErrors"] == [], created
    assert created["export"]["settings"] == {"listId": choices[0]["id"]}
    assert created["export"]["connection"] == {"id": connection_id}

    secrets = await stored_secrets(services, connection_id, fake)
    assert not [s for s in secrets if s in page.text], "a secret reached the browser"
    leaked = [n for n, answer in enumerate(gql.answers) if any(s in answer for s in secrets)]
    assert leaked == [], f"GraphQL answers {leaked} carried a token or the client secret"


async def test_export_to_a_list_the_account_lacks_is_refused_on_list_id_and_nothing_is_saved(
    services: Services, fake: RunningFake, callback_server: CallbackServer
) -> None:
    gql = client(callback_server, services)
    connection_id = await gql.create_connection()
    code, state = await approve_at_fake(await gql.authorize(connection_id))
    await gql.data(COMPLETE_AUTHORIZATION, {"state": state, "code": code})
    segment_id = await gql.segment()

    absent = (
        await gql.data(
            CREATE_EXPORT, {"input": export_input(connection_id, segment_id, ABSENT_LIST)}
        )
    )["createExport"]
    malformed = (
        await gql.data(
            CREATE_EXPORT, {"input": export_input(connection_id, segment_id, "newsletter-list")}
        )
    )["createExport"]

    assert absent["export"] is None
    [error] = absent["userErrors"]
    assert error["field"] == ["settings", "listId"]
    assert error["code"] == "NOT_FOUND"
    assert ABSENT_LIST in error["message"]
    assert "does not exist" in error["message"]
    assert malformed["export"] is None
    [error] = malformed["userErrors"]
    assert error["field"] == ["settings", "listId"]
    assert error["code"] == "INVALID"
    assert "'newsletter-list' is not a UUID" in error["message"]
    assert await gql.export_count() == 0

    secrets = await stored_secrets(services, connection_id, fake)
    assert not [a for a in gql.answers if any(s in a for s in secrets)]


async def test_callback_sends_the_browser_on_to_the_ui_after_a_graphql_started_authorization(
    services: Services, callback_server: CallbackServer
) -> None:
    services.settings = services.settings.model_copy(
        update={"ui_url": "https://ui.example/settings/connections"}
    )
    gql = client(callback_server, services)
    connection_id = await gql.create_connection()
    url = await gql.authorize(connection_id)

    async with httpx.AsyncClient(follow_redirects=False) as browser:
        at_fake = await browser.get(url)
        assert at_fake.status_code == 302
        back = at_fake.headers["location"]
        assert back.startswith(f"{callback_server.url}/oauth/callback?")
        at_us = await browser.get(back)

    assert at_us.status_code == 303
    target = httpx.URL(at_us.headers["location"])
    assert str(target).startswith("https://ui.example/settings/connections?")
    assert target.params["connection"] == connection_id
    assert target.params["status"] == "connected"
    connection = await gql.connection(connection_id)
    assert (connection["status"], connection["account"]) == ("CONNECTED", "Fake Outfitters")


async def test_single_page_app_completes_with_state_and_code_and_a_reused_state_is_refused(
    services: Services, fake: RunningFake, callback_server: CallbackServer
) -> None:
    gql = client(callback_server, services)
    connection_id = await gql.create_connection()
    code, state = await approve_at_fake(await gql.authorize(connection_id))

    completed = (await gql.data(COMPLETE_AUTHORIZATION, {"state": state, "code": code}))[
        "completeConnectionAuthorization"
    ]
    assert completed == {
        "connection": {"id": connection_id, "status": "CONNECTED", "account": "Fake Outfitters"},
        "userErrors": [],
    }
    before = await gql.connection(connection_id)
    secrets = await stored_secrets(services, connection_id, fake)

    again = (await gql.data(COMPLETE_AUTHORIZATION, {"state": state, "code": code}))[
        "completeConnectionAuthorization"
    ]

    assert again["connection"] is None
    [error] = again["userErrors"]
    assert error["code"] == "STATE_UNKNOWN"
    assert error["field"] == ["code"]
    assert "already used" in error["message"]
    assert await gql.connection(connection_id) == before
    assert await stored_secrets(services, connection_id, fake) == secrets, "tokens changed"
    assert not [a for a in gql.answers if any(s in a for s in secrets)]


async def test_a_state_started_by_another_admin_is_refused_and_stays_usable_by_its_starter(
    services: Services, fake: RunningFake, callback_server: CallbackServer
) -> None:
    gql = client(callback_server, services)
    connection_id = await gql.create_connection()
    code, state = await approve_at_fake(await gql.authorize(connection_id, sub="bob"))
    before = await gql.connection(connection_id)

    foreign = (await gql.data(COMPLETE_AUTHORIZATION, {"state": state, "code": code}))[
        "completeConnectionAuthorization"
    ]

    assert foreign["connection"] is None
    [error] = foreign["userErrors"]
    assert error["code"] == "STATE_FOREIGN"
    assert "another user" in error["message"]
    assert await gql.connection(connection_id) == before
    assert before["status"] == "PENDING_AUTHORIZATION"

    by_starter = (
        await gql.data(COMPLETE_AUTHORIZATION, {"state": state, "code": code}, sub="bob")
    )["completeConnectionAuthorization"]
    assert by_starter["userErrors"] == []
    assert by_starter["connection"]["status"] == "CONNECTED"
    secrets = await stored_secrets(services, connection_id, fake)
    assert not [a for a in gql.answers if any(s in a for s in secrets)]


async def test_an_unknown_state_is_refused_and_a_contributor_may_not_complete_at_all(
    services: Services, callback_server: CallbackServer
) -> None:
    gql = client(callback_server, services)
    connection_id = await gql.create_connection()
    await gql.authorize(connection_id)

    unknown = (
        await gql.data(COMPLETE_AUTHORIZATION, {"state": "made-up-state", "code": "made-up-code"})
    )["completeConnectionAuthorization"]
    forbidden = await gql.error(
        COMPLETE_AUTHORIZATION,
        {"state": "made-up-state", "code": "made-up-code"},
        sub="carol",
        role=Role.CONTRIBUTOR,
    )

    assert unknown["connection"] is None
    assert [e["code"] for e in unknown["userErrors"]] == ["STATE_UNKNOWN"]
    assert forbidden["extensions"]["code"] == "FORBIDDEN"
    assert (await gql.connection(connection_id))["status"] == "PENDING_AUTHORIZATION"
