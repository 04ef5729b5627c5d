"""``exportSettingChoices``: who may ask, and every refusal as a coded GraphQL error.

Real app on uvicorn, the real Constant Contact plugin, the fake over HTTP.
"""

from __future__ import annotations

import httpx
import pytest
from segport_constant_contact.fake import RunningFake

from service.api.ids import from_global_id, to_global_id
from service.core import Services
from service.domain import ConnectionStatus, Role

from .conftest import CallbackServer, approve_at_fake
from .gql_client import COMPLETE_AUTHORIZATION, CREATE_EXPORT, SETTING_CHOICES, GraphQLClient
from .gql_client import export_input as make_export_input

GENERAL_INTEREST = "07936f78-662a-11eb-af0a-fa163e56c9b0"


async def connected(gql: GraphQLClient, usable_by: str = "ADMINS_AND_CONTRIBUTORS") -> str:
    connection_id = await gql.create_connection(usable_by=usable_by)
    code, state = await approve_at_fake(await gql.authorize(connection_id))
    payload = (await gql.data(COMPLETE_AUTHORIZATION, {"state": state, "code": code}))[
        "completeConnectionAuthorization"
    ]
    assert payload["userErrors"] == [], payload
    return connection_id


def choices_of(connection_id: str, setting: str = "listId") -> dict[str, str]:
    return {"connectionId": connection_id, "setting": setting}


@pytest.fixture
def gql(services: Services, callback_server: CallbackServer) -> GraphQLClient:
    return GraphQLClient(callback_server.url, services)


async def test_choices_list_every_list_of_the_account_including_ones_added_later(
    gql: GraphQLClient, fake: RunningFake
) -> None:
    connection_id = await connected(gql)
    async with httpx.AsyncClient() as admin:
        added = await admin.post(f"{fake.url}/__fake__/lists", json={"name": "Spring sale"})
    assert added.status_code in (200, 201), added.text

    choices = (await gql.data(SETTING_CHOICES, choices_of(connection_id)))["exportSettingChoices"]

    assert sorted(c["name"] for c in choices) == ["General Interest", "Newsletter", "Spring sale"]
    assert all(c["memberCount"] == 0 for c in choices)
    assert {"id": GENERAL_INTEREST, "name": "General Interest", "memberCount": 0} in choices


async def test_viewers_and_contributors_on_an_admins_only_connection_are_forbidden(
    gql: GraphQLClient,
) -> None:
    connection_id = await connected(gql, usable_by="ADMINS")

    viewer = await gql.error(SETTING_CHOICES, choices_of(connection_id), role=Role.VIEWER)
    contributor = await gql.error(SETTING_CHOICES, choices_of(connection_id), role=Role.CONTRIBUTOR)

    assert viewer["extensions"] == {"code": "FORBIDDEN"}
    assert contributor["extensions"] == {"code": "FORBIDDEN"}
    assert connection_id in contributor["message"]
    assert "Marketing CC" not in contributor["message"], "the name of a hidden connection"
    assert "General Interest" not in str(contributor)


async def test_a_missing_or_malformed_connection_id_is_named_in_the_error(
    gql: GraphQLClient,
) -> None:
    absent = to_global_id("Connection", "no-such-connection")
    segment = to_global_id("Segment", "s1")

    not_found = await gql.error(SETTING_CHOICES, choices_of(absent))
    malformed = await gql.error(SETTING_CHOICES, choices_of("%%%"))
    wrong_type = await gql.error(SETTING_CHOICES, choices_of(segment))

    assert not_found["extensions"] == {"code": "NOT_FOUND"}
    assert absent in not_found["message"]
    assert malformed["extensions"] == {"code": "BAD_USER_INPUT"}
    assert "'%%%' is not a valid id" in malformed["message"]
    assert wrong_type["extensions"] == {"code": "BAD_USER_INPUT"}
    assert f"{segment!r} is not a Connection id" in wrong_type["message"]


async def test_an_unknown_setting_is_refused_naming_it_and_the_settings_there_are(
    gql: GraphQLClient,
) -> None:
    connection_id = await connected(gql)

    error = await gql.error(SETTING_CHOICES, choices_of(connection_id, "listID"))

    assert error["extensions"] == {"code": "UNKNOWN_SETTING"}
    assert "'listID' is not an export setting of Constant Contact" in error["message"]
    assert "listId" in error["message"]


async def test_a_connection_not_yet_authorized_is_refused_as_not_connected(
    gql: GraphQLClient, fake: RunningFake
) -> None:
    connection_id = await gql.create_connection()
    before = len(fake.state.request_log)

    error = await gql.error(SETTING_CHOICES, choices_of(connection_id))

    assert error["extensions"] == {"code": "NOT_CONNECTED"}
    assert "an admin must authorize it" in error["message"]
    assert len(fake.state.request_log) == before, "nothing was asked of Constant Contact"


async def test_refused_tokens_mark_the_connection_for_reauthorization_and_say_so(
    gql: GraphQLClient, services: Services, fake: RunningFake
) -> None:
    connection_id = await connected(gql)
    # Every access token stops working and the refresh token is revoked (invalid_grant).
    fake.state.expire_access_tokens()
    with fake.state.lock:
        fake.state.refresh_tokens.clear()

    error = await gql.error(SETTING_CHOICES, choices_of(connection_id))

    assert error["extensions"] == {"code": "NEEDS_REAUTHORIZATION"}
    stored = await services.store.get_connection(from_global_id(connection_id)[1])
    assert stored is not None
    assert stored.status is ConnectionStatus.NEEDS_REAUTHORIZATION
    again = await gql.error(SETTING_CHOICES, choices_of(connection_id))
    assert again["extensions"] == {"code": "NOT_CONNECTED"}


async def test_a_spent_daily_quota_answers_at_once_as_unavailable_instead_of_waiting(
    gql: GraphQLClient, fake: RunningFake
) -> None:
    connection_id = await connected(gql)
    fake.state.configure(requests_per_day=0)

    error = await gql.error(SETTING_CHOICES, choices_of(connection_id))

    assert error["extensions"] == {"code": "DESTINATION_UNAVAILABLE"}
    assert "Constant Contact asks to wait" in error["message"]
    assert "try again later" in error["message"]


async def test_an_unreachable_destination_makes_create_export_a_user_error_saving_nothing(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    connection_id = await connected(gql)
    segment_id = await gql.segment()
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    monkeypatch.setenv("SEGPORT_CONSTANT_CONTACT_API_BASE_URL", "http://127.0.0.1:9/v3")
    monkeypatch.setenv("SEGPORT_CONSTANT_CONTACT_MAX_TRIES", "1")

    picker = await gql.error(SETTING_CHOICES, choices_of(connection_id))
    created = (
        await gql.data(
            CREATE_EXPORT,
            {"input": make_export_input(connection_id, segment_id, GENERAL_INTEREST)},
        )
    )["createExport"]

    assert picker["extensions"] == {"code": "DESTINATION_UNAVAILABLE"}
    assert "ConnectError" in picker["message"]
    assert created["export"] is None
    [error] = created["userErrors"]
    assert error["code"] == "DESTINATION_UNAVAILABLE"
    assert "ConnectError" in error["message"]
    assert await gql.export_count() == 0
