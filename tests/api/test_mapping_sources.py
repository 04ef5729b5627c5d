"""A mapping source no profile has is refused, with the closest known attributes (issue 10,
item 20), unless the mapping says the attribute comes later (``allowUnknownSource``). Over HTTP.
"""

from __future__ import annotations

from typing import Any

from tests.api.conftest import ApiClient
from tests.api.operations import CREATE_EXPORT, counts, export_input, make_connection, make_segment

UPSERT_PROFILES = """mutation($input: UpsertProfilesInput!) {
  upsertProfiles(input: $input) { upsertedCount userErrors { code } } }"""
UPDATE_EXPORT = """mutation($input: UpdateExportInput!) {
  updateExport(input: $input) { export { displayName fieldMapping { source target } }
  userErrors { field message code } } }"""


async def load_profiles(api: ApiClient) -> None:
    profiles = [
        {"id": "p1", "attributes": {"EmailAddress": "a@example.com", "FirstName": "Ann"}},
        {"id": "p2", "attributes": {"EmailAddress": "b@example.com", "LastName": "Bo"}},
    ]
    data = await api.data(UPSERT_PROFILES, {"input": {"profiles": profiles}})
    assert data["upsertProfiles"] == {"upsertedCount": 2, "userErrors": []}


async def create(api: ApiClient, mapping: list[dict[str, Any]]) -> dict[str, Any]:
    segment_id = await make_segment(api)
    connection_id = await make_connection(api)
    variables = {"input": export_input(connection_id, [segment_id], fieldMapping=mapping)}
    data = await api.data(CREATE_EXPORT, variables, role="contributor")
    payload: dict[str, Any] = data["createExport"]
    return payload


async def test_a_misspelt_source_is_refused_naming_the_closest_attribute(api: ApiClient) -> None:
    await load_profiles(api)

    payload = await create(
        api,
        [
            {"source": "EmailAdress", "target": "email"},
            {"source": "FirstName", "target": "first_name"},
        ],
    )

    assert payload["export"] is None
    [error] = payload["userErrors"]
    assert error["field"] == ["fieldMapping", "0", "source"]
    assert error["code"] == "UNKNOWN_SOURCE"
    assert "'EmailAddress'" in error["message"]
    assert "allowUnknownSource" in error["message"]
    assert (await counts(api))["exports"] == 0


async def test_a_source_differing_only_in_case_suggests_the_known_spelling(
    api: ApiClient,
) -> None:
    await load_profiles(api)

    payload = await create(api, [{"source": "emailaddress", "target": "email"}])

    assert [e["code"] for e in payload["userErrors"]] == ["UNKNOWN_SOURCE"]
    assert "did you mean 'EmailAddress'" in payload["userErrors"][0]["message"]


async def test_a_source_expected_later_is_saved_when_the_mapping_says_so(api: ApiClient) -> None:
    await load_profiles(api)

    payload = await create(
        api,
        [
            {"source": "EmailAddress", "target": "email"},
            {"source": "Nickname", "target": "first_name", "allowUnknownSource": True},
        ],
    )

    assert payload["userErrors"] == []
    assert payload["export"]["displayName"] == "Weekly newsletter"


async def test_before_any_profile_is_loaded_every_source_is_taken_as_given(
    api: ApiClient,
) -> None:
    payload = await create(api, [{"source": "Whatever", "target": "email"}])

    assert payload["userErrors"] == []


async def test_update_export_checks_the_mapping_it_is_given_and_only_that(
    api: ApiClient,
) -> None:
    payload = await create(api, [{"source": "Mail", "target": "email"}])
    export_id = payload["export"]["id"]
    await load_profiles(api)

    misspelt = await api.data(
        UPDATE_EXPORT,
        {"input": {"id": export_id, "fieldMapping": [{"source": "FirstNam", "target": "email"}]}},
    )
    renamed = await api.data(UPDATE_EXPORT, {"input": {"id": export_id, "displayName": "Renamed"}})

    [error] = misspelt["updateExport"]["userErrors"]
    assert (error["field"], error["code"]) == (["fieldMapping", "0", "source"], "UNKNOWN_SOURCE")
    assert "'FirstName'" in error["message"]
    # The saved mapping ("Mail", from before the profiles) is not checked again.
    assert renamed["updateExport"]["userErrors"] == []
    assert renamed["updateExport"]["export"] == {
        "displayName": "Renamed",
        "fieldMapping": [{"source": "Mail", "target": "email"}],
    }
