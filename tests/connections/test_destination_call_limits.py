"""Aliases cannot multiply calls to a destination (issue 10, item 2).

Two hundred aliases of ``exportSettingChoices`` used to make dozens of calls
to Constant Contact, spending the application's shared quota. Now one
operation makes one call per connection and setting, answers are reused for
``SEGPORT_DESTINATION_CALL_CACHE_SECONDS``, and each user has a budget of calls
(``SEGPORT_DESTINATION_CALL_BUDGET``). Real app on uvicorn, the real Constant
Contact plugin, the fake over HTTP. The alias and token limits are raised here
so that only the destination's guard is at work.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from segport_constant_contact.fake import RunningFake

from service.app import create_app
from service.core import Services, open_services
from service.domain import Role
from tests.support.settings import make_settings

from .conftest import CallbackServer
from .gql_client import GraphQLClient, export_input
from .test_setting_choices import GENERAL_INTEREST, connected

ALIASES = 200


def aliased_choices(count: int) -> str:
    fields = " ".join(
        f'c{n}: exportSettingChoices(connectionId: $connectionId, setting: "listId") {{ id }}'
        for n in range(count)
    )
    return f"query($connectionId: ID!) {{ {fields} }}"


def list_calls(fake: RunningFake) -> int:
    """Calls the fake answered for the account's lists. A request the fake's rate gate
    refused (429) is the same call again once the transport retries it, not another."""
    return sum(
        1
        for entry in fake.state.request_log
        if entry.path.endswith("/contact_lists") and entry.status != 429
    )


@pytest.fixture
def limits() -> dict[str, Any]:
    """Settings of the guard under test; tests parametrize it."""
    return {}


@pytest.fixture
async def services(
    fake: RunningFake, callback_server: CallbackServer, tmp_path: Path, limits: dict[str, Any]
) -> AsyncIterator[Services]:
    settings = make_settings(
        f"sqlite:///{tmp_path / 'segport.db'}",
        public_url=callback_server.url,
        graphql_max_aliases=ALIASES,
        graphql_max_tokens=20 * ALIASES,
        **limits,
    )
    fake.state.configure(redirect_uris=[settings.oauth_redirect_uri])
    async with open_services(settings) as opened:
        callback_server.app = create_app(opened)
        yield opened


@pytest.fixture
def gql(services: Services, callback_server: CallbackServer) -> GraphQLClient:
    return GraphQLClient(callback_server.url, services)


@pytest.mark.parametrize("limits", [{"destination_call_cache_seconds": 0}])
async def test_200_aliases_make_one_call_to_the_destination(
    gql: GraphQLClient, fake: RunningFake
) -> None:
    connection_id = await connected(gql)
    before = list_calls(fake)

    data = await gql.data(aliased_choices(ALIASES), {"connectionId": connection_id})

    assert list_calls(fake) - before == 1
    assert len(data) == ALIASES
    assert all(len(choices) == 2 for choices in data.values())


async def test_repeated_operations_within_the_cache_time_make_no_calls(
    gql: GraphQLClient, fake: RunningFake
) -> None:
    connection_id = await connected(gql)
    await gql.data(aliased_choices(1), {"connectionId": connection_id})
    after_first = list_calls(fake)

    for sub in ("alice", "alice", "bob"):
        await gql.data(aliased_choices(3), {"connectionId": connection_id}, sub=sub)

    assert list_calls(fake) == after_first


@pytest.mark.parametrize(
    "limits", [{"destination_call_cache_seconds": 0, "destination_call_budget": 2}]
)
async def test_past_the_budget_a_user_gets_a_clear_error_and_others_still_may_call(
    gql: GraphQLClient, fake: RunningFake
) -> None:
    connection_id = await connected(gql)
    variables = {"connectionId": connection_id}
    for _ in range(2):
        await gql.data(aliased_choices(5), variables, sub="alice")
    calls = list_calls(fake)

    spent = await gql.post(aliased_choices(2), variables, sub="alice")
    other = await gql.data(aliased_choices(1), variables, sub="carol", role=Role.CONTRIBUTOR)

    assert list_calls(fake) == calls + 1, "only carol's call reached Constant Contact"
    codes = {error["extensions"]["code"] for error in spent["errors"]}
    assert codes == {"DESTINATION_CALL_BUDGET_SPENT"}
    message = spent["errors"][0]["message"]
    assert "2 calls to destinations within the last hour" in message
    assert "SEGPORT_DESTINATION_CALL_BUDGET" in message
    assert "try again in 60 minutes" in message
    assert len(other["c0"]) == 2


@pytest.mark.parametrize("limits", [{"destination_call_cache_seconds": 0}])
async def test_aliased_create_exports_share_one_check_of_their_settings(
    gql: GraphQLClient, fake: RunningFake
) -> None:
    connection_id = await connected(gql)
    segment_id = await gql.segment()
    count = 10
    arguments = ", ".join(f"$i{n}: CreateExportInput!" for n in range(count))
    fields = " ".join(
        f"e{n}: createExport(input: $i{n}) {{ export {{ id }} userErrors {{ code }} }}"
        for n in range(count)
    )
    variables = {
        f"i{n}": {
            **export_input(connection_id, segment_id, GENERAL_INTEREST),
            "displayName": f"Newsletter {n}",
        }
        for n in range(count)
    }
    before = list_calls(fake)

    data = await gql.data(f"mutation({arguments}) {{ {fields} }}", variables)

    assert list_calls(fake) - before == 1
    assert all(payload["userErrors"] == [] for payload in data.values()), data
    assert await gql.export_count() == count
