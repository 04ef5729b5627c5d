"""Sync modes and previewExport over GraphQL (HTTP): the default, each mutation that sets
the mode, mirrors refused for a destination that cannot remove members, and a preview
that sends nothing, shows the first records and says why an export cannot run."""

from __future__ import annotations

from typing import Any

from service.api.ids import from_global_id
from tests.api.conftest import ApiClient
from tests.api.operations import CREATE_EXPORT, export_input, make_connection, make_segment

MODE = "query($id: ID!) { node(id: $id) { ... on Export { syncMode } } }"
UPDATE = """mutation($id: ID!, $mode: ExportSyncMode) {
  updateExport(input: {id: $id, syncMode: $mode}) {
  export { syncMode } userErrors { field code message } } }"""
DUPLICATE = """mutation($id: ID!, $mode: ExportSyncMode) {
  duplicateExport(input: {id: $id, syncMode: $mode}) {
  export { id syncMode } userErrors { field code message } } }"""
DETACH = (
    """mutation($id: ID!) { detachConnection(input: {exportId: $id}) { userErrors { code } } }"""
)
PREVIEW = """mutation($id: ID!) { previewExport(input: {exportId: $id}) {
  preview { toAdd toUpdate unchanged toRemove skippedInvalid skippedDuplicate fieldWarnings
            note sample { profileId contact } }
  userErrors { field code message } } }"""
UPSERT_PROFILES = """mutation($input: UpsertProfilesInput!) {
  upsertProfiles(input: $input) { upsertedCount userErrors { code } } }"""


async def created(api: ApiClient, **overrides: Any) -> tuple[str, dict[str, Any]]:
    name = str(overrides.get("displayName", "Weekly newsletter"))
    connection = await make_connection(api, f"Account for {name}")
    segment = await make_segment(api, f"Segment for {name}")
    data = await api.data(
        CREATE_EXPORT, {"input": export_input(connection, [segment], **overrides)}
    )
    payload: dict[str, Any] = data["createExport"]
    export_id = payload["export"]["id"] if payload["export"] else ""
    return export_id, payload | {"segment": segment}


async def mode_of(api: ApiClient, export_id: str) -> str:
    mode: str = (await api.data(MODE, {"id": export_id}))["node"]["syncMode"]
    return mode


async def test_new_exports_send_changes_unless_told_otherwise(api: ApiClient) -> None:
    default, _ = await created(api)
    assert await mode_of(api, default) == "SEND_CHANGES"
    everything, _ = await created(api, displayName="Everything", syncMode="SEND_ALL")
    assert await mode_of(api, everything) == "SEND_ALL"
    updated = await api.data(UPDATE, {"id": default, "mode": "SEND_ALL"})
    assert updated["updateExport"] == {"export": {"syncMode": "SEND_ALL"}, "userErrors": []}
    kept = await api.data(UPDATE, {"id": default, "mode": None})
    assert kept["updateExport"]["export"] == {"syncMode": "SEND_ALL"}
    copy = await api.data(DUPLICATE, {"id": default, "mode": None})
    assert copy["duplicateExport"]["export"]["syncMode"] == "SEND_ALL"
    other = await api.data(DUPLICATE, {"id": default, "mode": "SEND_CHANGES"})
    assert other["duplicateExport"]["export"]["syncMode"] == "SEND_CHANGES"


async def test_a_mirror_is_refused_for_a_destination_that_cannot_remove_members(
    api: ApiClient,
) -> None:
    _, payload = await created(api, syncMode="MIRROR")
    assert payload["export"] is None
    [error] = payload["userErrors"]
    assert (error["field"], error["code"]) == (["syncMode"], "MIRROR_UNSUPPORTED")
    assert "Test destination cannot remove list members" in error["message"]
    export_id, _ = await created(api, displayName="Plain")
    update = await api.data(UPDATE, {"id": export_id, "mode": "MIRROR"})
    assert [e["code"] for e in update["updateExport"]["userErrors"]] == ["MIRROR_UNSUPPORTED"]
    duplicate = await api.data(DUPLICATE, {"id": export_id, "mode": "MIRROR"})
    assert [e["code"] for e in duplicate["duplicateExport"]["userErrors"]] == ["MIRROR_UNSUPPORTED"]
    assert await mode_of(api, export_id) == "SEND_CHANGES"


async def test_a_preview_counts_and_shows_the_first_records_without_sending(
    api: ApiClient,
) -> None:
    export_id, payload = await created(api)
    segment = payload["segment"]
    people = [
        {"id": f"p{i:02d}", "attributes": {"EmailAddress": f"p{i}@example.com"}} for i in range(3)
    ]
    people.append({"id": "p99", "attributes": {"EmailAddress": "p1@example.com"}})  # duplicate
    for start in range(0, len(people), 2):
        chunk = [{**p, "segmentIds": [segment]} for p in people[start : start + 2]]
        done = await api.data(UPSERT_PROFILES, {"input": {"profiles": chunk}})
        assert done["upsertProfiles"]["userErrors"] == []

    answer = (await api.data(PREVIEW, {"id": export_id}))["previewExport"]

    assert answer["userErrors"] == []
    preview = answer["preview"]
    counts = {k: v for k, v in preview.items() if k not in ("sample", "note")}
    assert counts == {
        "toAdd": 3,
        "toUpdate": 0,
        "unchanged": 0,
        "toRemove": 0,
        "skippedInvalid": 0,
        "skippedDuplicate": 1,
        "fieldWarnings": 0,
    }
    assert preview["sample"] == [
        {"profileId": f"p{i:02d}", "contact": {"email": f"p{i}@example.com"}} for i in range(3)
    ]
    assert preview["note"] is None
    # Nothing was sent, so nothing is in the export's ledger.
    assert await api.services.store.count_ledger(from_global_id(export_id)[1]) == 0


async def test_a_preview_of_an_export_that_cannot_run_says_why(api: ApiClient) -> None:
    export_id, _ = await created(api)
    await api.data(DETACH, {"id": export_id})
    answer = (await api.data(PREVIEW, {"id": export_id}))["previewExport"]
    assert answer["preview"] is None
    [error] = answer["userErrors"]
    assert (error["field"], error["code"]) == (["exportId"], "EXPORT_DETACHED")
    assert "detached" in error["message"]
    viewer = await api.post(PREVIEW, {"id": export_id}, role="viewer")
    assert viewer["errors"][0]["extensions"]["code"] == "FORBIDDEN"


WHOLE_LIST_PREVIEW = """mutation($id: ID!) {
  previewExport(input: {exportId: $id, mirrorScope: WHOLE_LIST}) {
  preview { toRemove outsideExport wholeListConfirmation } userErrors { field code message } } }"""
WHOLE_LIST_RUN = """mutation($id: ID!, $confirmation: String) {
  runExport(input: {exportId: $id, wholeListConfirmation: $confirmation}) {
  exportRun { id } userErrors { field code message } } }"""


async def test_a_whole_list_mirror_is_refused_for_an_export_that_is_not_a_mirror(
    api: ApiClient,
) -> None:
    export_id, _ = await created(api, displayName="Not a mirror")
    preview = (await api.data(WHOLE_LIST_PREVIEW, {"id": export_id}))["previewExport"]
    assert preview["preview"] is None
    [error] = preview["userErrors"]
    assert (error["field"], error["code"]) == (["mirrorScope"], "NOT_A_MIRROR")
    assert "'Not a mirror' is not a MIRROR export" in error["message"]
    run = (await api.data(WHOLE_LIST_RUN, {"id": export_id, "confirmation": "x"}))["runExport"]
    assert run["exportRun"] is None
    assert [(e["field"], e["code"]) for e in run["userErrors"]] == [
        (["wholeListConfirmation"], "NOT_A_MIRROR")
    ]
