"""Every "bad input" case answers a userError naming the field and code, and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import UPSERT_PROFILES_MAX, ApiClient
from tests.api.destination_fixture import MISSING_LIST_ID
from tests.api.operations import (
    CREATE_CONNECTION,
    CREATE_EXPORT,
    counts,
    export_input,
    make_connection,
    make_export,
    make_segment,
)


async def _errors(
    api: ApiClient, document: str, payload: str, input: Any, role: str = "admin"
) -> list[dict[str, Any]]:
    data = await api.data(document, {"input": input}, role=role)
    errors: list[dict[str, Any]] = data[payload]["userErrors"]
    return errors


async def test_create_connection_without_accepting_privacy_terms_is_refused(api: ApiClient) -> None:
    before = await counts(api)
    errors = await _errors(
        api,
        CREATE_CONNECTION,
        "createConnection",
        {"destinationType": "test_dest", "displayName": "X", "acceptDataPrivacy": False},
    )
    assert [(e["field"], e["code"]) for e in errors] == [
        (["acceptDataPrivacy"], "DATA_PRIVACY_NOT_ACCEPTED")
    ]
    assert await counts(api) == before


async def test_create_connection_of_an_unknown_destination_type_names_it(api: ApiClient) -> None:
    before = await counts(api)
    errors = await _errors(
        api,
        CREATE_CONNECTION,
        "createConnection",
        {"destinationType": "carrier_pigeon", "displayName": "X", "acceptDataPrivacy": True},
    )
    assert [(e["field"], e["code"]) for e in errors] == [
        (["destinationType"], "UNKNOWN_DESTINATION_TYPE")
    ]
    assert "carrier_pigeon" in errors[0]["message"]
    assert await counts(api) == before


EXPORT_CASES = [
    pytest.param(
        {"settings": {"listId": "not-a-uuid"}},
        ["settings", "listId"],
        "INVALID",
        id="malformed-list-id",
    ),
    pytest.param(
        {"settings": {"listId": MISSING_LIST_ID}},
        ["settings", "listId"],
        "LIST_NOT_FOUND",
        id="list-missing-at-destination",
    ),
    pytest.param(
        {"fieldMapping": [{"source": "FirstName", "target": "first_name"}]},
        ["fieldMapping"],
        "REQUIRED_TARGET",
        id="no-email-mapping",
    ),
    pytest.param(
        {
            "fieldMapping": [
                {"source": "Email", "target": "email"},
                {"source": "X", "target": "fax"},
            ]
        },
        ["fieldMapping", "1", "target"],
        "UNKNOWN_TARGET",
        id="unknown-mapping-target",
    ),
    pytest.param({"segmentIds": []}, ["segmentIds"], "REQUIRED", id="no-segments"),
    pytest.param(
        {"segmentIds": ["U2VnbWVudDpub3BlMTIz"]},
        ["segmentIds", "0"],
        "NOT_FOUND",
        id="unknown-segment",
    ),
    pytest.param(
        {
            "schedule": {
                "mode": "OWN",
                "recurrence": {
                    "frequency": "DAILY",
                    "timeZone": "UTC",
                    "times": ["01:00", "02:00", "03:00", "04:00", "05:00"],
                },
            }
        },
        ["schedule", "recurrence", "times"],
        "TOO_MANY_TIMES",
        id="five-times",
    ),
    pytest.param(
        {
            "schedule": {
                "mode": "OWN",
                "recurrence": {"frequency": "DAILY", "timeZone": "UTC", "times": ["25:00"]},
            }
        },
        ["schedule", "recurrence", "times"],
        "INVALID_TIME",
        id="25-00",
    ),
    pytest.param(
        {
            "schedule": {
                "mode": "OWN",
                "recurrence": {"frequency": "DAILY", "timeZone": "Mars/Base", "times": ["07:00"]},
            }
        },
        ["schedule", "recurrence", "timeZone"],
        "INVALID_TIME_ZONE",
        id="mars-base",
    ),
    pytest.param(
        {"schedule": {"mode": "OWN"}},
        ["schedule", "recurrence"],
        "REQUIRED",
        id="own-without-recurrence",
    ),
]


@pytest.mark.parametrize(("overrides", "field", "code"), EXPORT_CASES)
async def test_create_export_with_bad_input_names_the_field_and_saves_nothing(
    api: ApiClient, overrides: dict[str, Any], field: list[str], code: str
) -> None:
    segment_id = await make_segment(api)
    connection_id = await make_connection(api)
    before = await counts(api)

    errors = await _errors(
        api, CREATE_EXPORT, "createExport", export_input(connection_id, [segment_id], **overrides)
    )

    assert (field, code) in [(e["field"], e["code"]) for e in errors], errors
    assert await counts(api) == before


async def test_create_export_on_a_connection_the_caller_may_not_use_is_forbidden(
    api: ApiClient,
) -> None:
    segment_id = await make_segment(api)
    private = await make_connection(api, "Admins only", usable_by="ADMINS")
    before = await counts(api)
    errors = await _errors(
        api, CREATE_EXPORT, "createExport", export_input(private, [segment_id]), role="contributor"
    )
    assert [(e["field"], e["code"]) for e in errors] == [(["connectionId"], "FORBIDDEN")]
    assert await counts(api) == before


async def test_create_export_on_a_removed_or_unknown_connection_is_not_found(
    api: ApiClient,
) -> None:
    segment_id = await make_segment(api)
    connection_id = await make_connection(api)
    await make_export(api, connection_id, segment_id)
    removed = await api.data(
        "mutation($id: ID!) { removeConnection(input: {id: $id, exports: DETACH}) "
        "{ removedId detachedExportIds userErrors { code } } }",
        {"id": connection_id},
    )
    assert removed["removeConnection"]["userErrors"] == []
    assert len(removed["removeConnection"]["detachedExportIds"]) == 1
    before = await counts(api)

    for connection in (connection_id, "Q29ubmVjdGlvbjpub3BlOTk5"):
        errors = await _errors(
            api, CREATE_EXPORT, "createExport", export_input(connection, [segment_id])
        )
        assert [(e["field"], e["code"]) for e in errors] == [(["connectionId"], "NOT_FOUND")]
    assert await counts(api) == before
    detached = await api.data("{ exports { edges { node { attached connection { id } } } } }")
    assert detached["exports"]["edges"] == [{"node": {"attached": False, "connection": None}}]


async def test_removing_a_used_connection_fails_by_default_naming_how_many_exports(
    api: ApiClient,
) -> None:
    segment_id = await make_segment(api)
    connection_id = await make_connection(api)
    await make_export(api, connection_id, segment_id)
    await make_export(api, connection_id, segment_id)
    before = await counts(api)

    data = await api.data(
        "mutation($id: ID!) { removeConnection(input: {id: $id}) "
        "{ removedId userErrors { field message code } } }",
        {"id": connection_id},
    )

    payload = data["removeConnection"]
    assert payload["removedId"] is None
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
        (["exports"], "CONNECTION_IN_USE")
    ]
    assert "2 export" in payload["userErrors"][0]["message"]
    assert await counts(api) == before


SCHEDULE_CASES = [
    pytest.param(
        {"times": ["01:00", "02:00", "03:00", "04:00", "05:00"]},
        ["times"],
        "TOO_MANY_TIMES",
        id="five-times",
    ),
    pytest.param({"times": ["25:00"]}, ["times"], "INVALID_TIME", id="25-00"),
    pytest.param({"times": ["7:5"]}, ["times"], "INVALID_TIME", id="7-5"),
    pytest.param({"timeZone": "Mars/Base"}, ["timeZone"], "INVALID_TIME_ZONE", id="mars-base"),
    pytest.param(
        {"frequency": "WEEKLY", "weekdays": []}, ["weekdays"], "REQUIRED", id="weekly-without-days"
    ),
]

UPDATE_SCHEDULE = """
mutation($input: UpdateRefreshScheduleInput!) {
  updateRefreshSchedule(input: $input) {
    refreshSchedule { enabled frequency weekdays times timeZone updatedBy }
    userErrors { field message code }
  }
}"""
READ_SCHEDULE = "{ refreshSchedule { enabled frequency weekdays times timeZone } }"


@pytest.mark.parametrize(("change", "field", "code"), SCHEDULE_CASES)
async def test_refresh_schedule_rejects_bad_recurrences_and_keeps_the_old_one(
    api: ApiClient, change: dict[str, Any], field: list[str], code: str
) -> None:
    before = await api.data(READ_SCHEDULE)
    errors = await _errors(
        api, UPDATE_SCHEDULE, "updateRefreshSchedule", {"enabled": True, **change}
    )
    assert (field, code) in [(e["field"], e["code"]) for e in errors], errors
    assert await api.data(READ_SCHEDULE) == before


async def test_refresh_schedule_accepts_a_weekly_recurrence(api: ApiClient) -> None:
    data = await api.data(
        UPDATE_SCHEDULE,
        {
            "input": {
                "enabled": True,
                "frequency": "WEEKLY",
                "weekdays": ["FRIDAY", "MONDAY"],
                "times": ["18:30", "06:00"],
                "timeZone": "Europe/Paris",
            }
        },
    )
    assert data["updateRefreshSchedule"] == {
        "refreshSchedule": {
            "enabled": True,
            "frequency": "WEEKLY",
            "weekdays": ["MONDAY", "FRIDAY"],
            "times": ["06:00", "18:30"],
            "timeZone": "Europe/Paris",
            "updatedBy": "admin-user",
        },
        "userErrors": [],
    }


UPSERT_PROFILES = """
mutation($input: UpsertProfilesInput!) {
  upsertProfiles(input: $input) { upsertedCount userErrors { field message code } }
}"""


async def test_upsert_profiles_over_the_maximum_writes_nothing(api: ApiClient) -> None:
    profiles = [{"id": f"p{i}", "attributes": {}} for i in range(UPSERT_PROFILES_MAX + 1)]
    errors = await _errors(api, UPSERT_PROFILES, "upsertProfiles", {"profiles": profiles})
    assert [(e["field"], e["code"]) for e in errors] == [(["profiles"], "TOO_MANY")]
    assert await api.data("{ profileAttributes }") == {"profileAttributes": []}
    assert await api.services.store.get_profile("p0") is None


async def test_upsert_profiles_with_bad_items_names_each_index_and_writes_nothing(
    api: ApiClient,
) -> None:
    segment_id = await make_segment(api)
    profiles = [
        {"id": "good", "attributes": {"Email": "a@example.com"}, "segmentIds": [segment_id]},
        {"id": "list", "attributes": ["not", "an", "object"]},
        {"id": "ghost", "attributes": {}, "segmentIds": ["U2VnbWVudDpnaG9zdA"]},
    ]
    errors = await _errors(api, UPSERT_PROFILES, "upsertProfiles", {"profiles": profiles})
    assert sorted((e["field"], e["code"]) for e in errors) == [
        (["profiles", "1", "attributes"], "NOT_AN_OBJECT"),
        (["profiles", "2", "segmentIds", "0"], "NOT_FOUND"),
    ]
    assert await api.services.store.get_profile("good") is None


async def test_upsert_profiles_stores_profiles_and_their_segments(api: ApiClient) -> None:
    segment_id = await make_segment(api)
    data = await api.data(
        UPSERT_PROFILES,
        {
            "input": {
                "profiles": [
                    {
                        "id": "p1",
                        "attributes": {"Email": "a@example.com"},
                        "segmentIds": [segment_id],
                    }
                ]
            }
        },
    )
    assert data["upsertProfiles"] == {"upsertedCount": 1, "userErrors": []}
    assert await api.data("{ profileAttributes }") == {"profileAttributes": ["Email"]}
    members = await api.data("{ segments { edges { node { memberCount } } } }")
    assert members["segments"]["edges"] == [{"node": {"memberCount": 1}}]
