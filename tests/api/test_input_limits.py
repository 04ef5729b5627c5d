"""Expected validation failures are precise userErrors, not "Unexpected error." (issue 10, item 7).

Over HTTP (the real app, httpx): attributes nested deeper than the documented
limit, lone surrogates in attribute values and names, in segment names (which
reported a false ``TAKEN``) and anywhere else in a mutation's input, and text
longer than the documented limits. Bodies are sent as raw JSON so that lone
surrogates travel as the ``\\ud800`` escapes a client would send.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from service.api.input_checks import MAX_NESTING, NAME_MAX_CHARS, VALUE_MAX_CHARS
from service.app import create_app
from service.core import open_services
from tests.api import destination_fixture
from tests.api.conftest import ApiClient
from tests.api.operations import CREATE_EXPORT, export_input, make_connection, make_segment
from tests.support.settings import make_settings

LONE = "\ud800"
UPSERT_PROFILES = """
mutation($input: UpsertProfilesInput!) {
  upsertProfiles(input: $input) { upsertedCount userErrors { field message code } }
}"""
UPSERT_SEGMENT = """
mutation($input: UpsertSegmentInput!) {
  upsertSegment(input: $input) { segment { id name } userErrors { field message code } }
}"""


@pytest.fixture
async def roomy_api(sqlite_url: str) -> AsyncIterator[ApiClient]:
    """The API with room for large bodies (the shared fixture caps them at 4 KB)."""
    settings = make_settings(sqlite_url, max_request_bytes=1_000_000)
    async with open_services(
        settings, extra_plugins=[destination_fixture], load_entry_points=False
    ) as services:
        transport = httpx.ASGITransport(app=create_app(services))
        async with httpx.AsyncClient(transport=transport, base_url="http://segport.test") as http:
            yield ApiClient(http=http, services=services)


async def raw_post(
    api: ApiClient, query: str, variables: dict[str, Any], role: str = "admin"
) -> dict[str, Any]:
    """POST with the body encoded by json.dumps (escapes, so lone surrogates survive)."""
    response = await api.http.post(
        "/graphql",
        content=json.dumps({"query": query, "variables": variables}).encode("ascii"),
        headers={
            "Authorization": f"Bearer {api.token(role)}",
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"inner": value}
    return value


async def upsert_profile(api: ApiClient, attributes: dict[str, Any]) -> dict[str, Any]:
    data = await raw_post(
        api, UPSERT_PROFILES, {"input": {"profiles": [{"id": "p1", "attributes": attributes}]}}
    )
    payload: dict[str, Any] = data["upsertProfiles"]
    return payload


def codes_and_fields(payload: dict[str, Any]) -> list[tuple[str, list[str]]]:
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


async def test_attributes_nested_500_deep_are_refused_naming_the_attribute(
    roomy_api: ApiClient,
) -> None:
    payload = await upsert_profile(roomy_api, {"email": "a@example.com", "deep": nested(500)})

    assert payload["upsertedCount"] == 0
    assert codes_and_fields(payload) == [
        ("NESTED_TOO_DEEP", ["profiles", "0", "attributes", "deep"])
    ]
    assert f"more than {MAX_NESTING} levels" in payload["userErrors"][0]["message"]
    assert await roomy_api.services.store.profile_attribute_names() == []


async def test_attributes_nested_to_the_limit_are_stored(roomy_api: ApiClient) -> None:
    payload = await upsert_profile(roomy_api, {"deep": nested(MAX_NESTING), "list": [[1], [2]]})

    assert payload == {"upsertedCount": 1, "userErrors": []}


async def test_a_lone_surrogate_in_an_attribute_value_or_name_is_invalid_text(
    roomy_api: ApiClient,
) -> None:
    in_value = await upsert_profile(roomy_api, {"name": f"J{LONE}ne"})
    in_name = await upsert_profile(roomy_api, {f"na{LONE}me": "Jane"})
    deep_inside = await upsert_profile(roomy_api, {"tags": ["ok", {"x": LONE}]})

    assert codes_and_fields(in_value) == [("INVALID_TEXT", ["profiles", "0", "attributes", "name"])]
    assert [code for code, _ in codes_and_fields(in_name)] == ["INVALID_TEXT"]
    assert in_name["userErrors"][0]["field"][:3] == ["profiles", "0", "attributes"]
    assert codes_and_fields(deep_inside) == [
        ("INVALID_TEXT", ["profiles", "0", "attributes", "tags", "1", "x"])
    ]
    assert all(p["upsertedCount"] == 0 for p in (in_value, in_name, deep_inside))


async def test_attribute_values_longer_than_the_limit_are_refused(roomy_api: ApiClient) -> None:
    longest = await upsert_profile(roomy_api, {"note": "x" * VALUE_MAX_CHARS})
    too_long = await upsert_profile(roomy_api, {"note": "x" * (VALUE_MAX_CHARS + 1)})
    long_name = await upsert_profile(roomy_api, {"n" * (NAME_MAX_CHARS + 1): "x"})

    assert longest == {"upsertedCount": 1, "userErrors": []}
    assert codes_and_fields(too_long) == [("TOO_LONG", ["profiles", "0", "attributes", "note"])]
    assert [code for code, _ in codes_and_fields(long_name)] == ["TOO_LONG"]


async def test_a_lone_surrogate_in_a_segment_name_is_invalid_text_not_taken(
    roomy_api: ApiClient,
) -> None:
    data = await raw_post(roomy_api, UPSERT_SEGMENT, {"input": {"name": f"VIP{LONE}"}})

    assert data["upsertSegment"]["segment"] is None
    assert codes_and_fields(data["upsertSegment"]) == [("INVALID_TEXT", ["name"])]


async def test_segment_names_and_descriptions_have_length_limits(roomy_api: ApiClient) -> None:
    longest = await raw_post(roomy_api, UPSERT_SEGMENT, {"input": {"name": "n" * NAME_MAX_CHARS}})
    too_long = await raw_post(
        roomy_api,
        UPSERT_SEGMENT,
        {"input": {"name": "n" * (NAME_MAX_CHARS + 1), "description": "d" * 5000}},
    )

    assert longest["upsertSegment"]["userErrors"] == []
    assert codes_and_fields(too_long["upsertSegment"]) == [
        ("TOO_LONG", ["name"]),
        ("TOO_LONG", ["description"]),
    ]


async def test_an_export_with_bad_text_or_deep_settings_answers_user_errors(
    roomy_api: ApiClient,
) -> None:
    segment_id = await make_segment(roomy_api)
    connection_id = await make_connection(roomy_api)
    surrogate_name = export_input(connection_id, [segment_id], displayName=f"News{LONE}")
    deep_settings = export_input(
        connection_id,
        [segment_id],
        settings={"listId": "4a9c0f7e-2b8d-4c1e-9f3a-5d6e7f809a1b", "extra": nested(300)},
    )

    named = await raw_post(roomy_api, CREATE_EXPORT, {"input": surrogate_name})
    deep = await raw_post(roomy_api, CREATE_EXPORT, {"input": deep_settings})

    assert codes_and_fields(named["createExport"]) == [("INVALID_TEXT", ["displayName"])]
    # (The destination also names "extra" an unknown setting.)
    assert ("NESTED_TOO_DEEP", ["settings", "extra"]) in codes_and_fields(deep["createExport"])


async def test_a_search_with_a_lone_surrogate_is_a_bad_input_not_an_unexpected_error(
    roomy_api: ApiClient,
) -> None:
    response = await roomy_api.http.post(
        "/graphql",
        content=json.dumps(
            {
                "query": "query($s: String) { segments(search: $s) { totalCount } }",
                "variables": {"s": LONE},
            }
        ).encode("ascii"),
        headers={
            "Authorization": f"Bearer {roomy_api.token('viewer')}",
            "Content-Type": "application/json",
        },
    )

    errors = response.json()["errors"]
    assert [e["extensions"]["code"] for e in errors] == ["BAD_USER_INPUT"]
