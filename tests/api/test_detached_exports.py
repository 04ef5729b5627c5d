"""Who may act on a detached export (issue 10, item 11), over HTTP.

The rule (README, "Roles"): a contributor acts on an export only while it is
attached to a connection usable by contributors; a detached export is for
admins and for the contributor who created it.
"""

from __future__ import annotations

from typing import Any

from tests.api.conftest import ApiClient
from tests.api.operations import CREATE_EXPORT, export_input, make_connection, make_segment

UPDATE = """mutation($id: ID!) { updateExport(input: {id: $id, displayName: "Renamed"}) {
  export { displayName } userErrors { field code } } }"""
ATTACH = """mutation($id: ID!, $c: ID!) { attachConnection(input: {exportId: $id, connectionId: $c})
  { export { connection { id } } userErrors { field code } } }"""
DETACH = """mutation($id: ID!) { detachConnection(input: {exportId: $id}) {
  export { attached } userErrors { field code } } }"""
DUPLICATE = """mutation($id: ID!) { duplicateExport(input: {id: $id}) {
  export { id } userErrors { field code } } }"""
REMOVE = """mutation($id: ID!) { removeExport(input: {id: $id}) {
  removedId userErrors { field code } } }"""
REMOVE_CONNECTION = """mutation($id: ID!) { removeConnection(input: {id: $id, exports: DETACH}) {
  detachedExportIds userErrors { code } } }"""
CAN_EDIT = "query($id: ID!) { node(id: $id) { ... on Export { canEdit attached } } }"


async def as_user(
    api: ApiClient, role: str, sub: str, query: str, variables: dict[str, Any]
) -> dict[str, Any]:
    body = await api.post(query, variables, authorization=f"Bearer {api.token(role, sub)}")
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


def refused(payload: dict[str, Any], field: str) -> bool:
    errors: list[dict[str, Any]] = payload["userErrors"]
    return errors == [{"field": [field], "code": "FORBIDDEN"}]


async def export_by(api: ApiClient, role: str, sub: str, connection_id: str) -> str:
    segment_id = await make_segment(api, f"Segment of {sub}")
    data = await as_user(
        api, role, sub, CREATE_EXPORT, {"input": export_input(connection_id, [segment_id])}
    )
    assert data["createExport"]["userErrors"] == [], data
    export_id: str = data["createExport"]["export"]["id"]
    return export_id


async def test_an_admins_export_detached_is_out_of_contributors_reach(api: ApiClient) -> None:
    shared = await make_connection(api, "Shared")
    other_shared = await make_connection(api, "Other shared")
    export_id = await export_by(api, "admin", "ada", shared)
    detached = await as_user(api, "admin", "ada", REMOVE_CONNECTION, {"id": shared})
    assert detached["removeConnection"]["detachedExportIds"] == [export_id]
    ids = {"id": export_id}

    update = await as_user(api, "contributor", "carl", UPDATE, ids)
    attach = await as_user(api, "contributor", "carl", ATTACH, {**ids, "c": other_shared})
    duplicate = await as_user(api, "contributor", "carl", DUPLICATE, ids)
    remove = await as_user(api, "contributor", "carl", REMOVE, ids)
    seen = await as_user(api, "contributor", "carl", CAN_EDIT, ids)
    by_admin = await as_user(api, "admin", "ada", ATTACH, {**ids, "c": other_shared})

    assert refused(update["updateExport"], "id")
    assert refused(attach["attachConnection"], "exportId")
    assert refused(duplicate["duplicateExport"], "id")
    assert refused(remove["removeExport"], "id")
    assert seen["node"] == {"canEdit": False, "attached": False}
    assert by_admin["attachConnection"]["userErrors"] == []
    assert by_admin["attachConnection"]["export"]["connection"]["id"] == other_shared
    # Attached to a shared connection again, it is the contributors' to manage.
    again = await as_user(api, "contributor", "carl", UPDATE, ids)
    assert again["updateExport"] == {"export": {"displayName": "Renamed"}, "userErrors": []}


async def test_a_contributor_keeps_their_own_detached_export(api: ApiClient) -> None:
    shared = await make_connection(api, "Shared")
    admins_only = await make_connection(api, "Admins only", usable_by="ADMINS")
    export_id = await export_by(api, "contributor", "carl", shared)
    ids = {"id": export_id}
    detach = await as_user(api, "contributor", "carl", DETACH, ids)
    assert detach["detachConnection"] == {"export": {"attached": False}, "userErrors": []}

    by_colleague = await as_user(api, "contributor", "cora", UPDATE, ids)
    colleague_sees = await as_user(api, "contributor", "cora", CAN_EDIT, ids)
    by_creator = await as_user(api, "contributor", "carl", UPDATE, ids)
    creator_sees = await as_user(api, "contributor", "carl", CAN_EDIT, ids)
    to_admins_only = await as_user(api, "contributor", "carl", ATTACH, {**ids, "c": admins_only})
    to_shared = await as_user(api, "contributor", "carl", ATTACH, {**ids, "c": shared})

    assert refused(by_colleague["updateExport"], "id")
    assert colleague_sees["node"] == {"canEdit": False, "attached": False}
    assert by_creator["updateExport"] == {"export": {"displayName": "Renamed"}, "userErrors": []}
    assert creator_sees["node"] == {"canEdit": True, "attached": False}
    assert refused(to_admins_only["attachConnection"], "connectionId")
    assert to_shared["attachConnection"]["userErrors"] == []
    # Attached again: every contributor may manage it, as before it was detached.
    colleague_again = await as_user(api, "contributor", "cora", UPDATE, ids)
    assert colleague_again["updateExport"]["userErrors"] == []


async def test_a_contributor_removes_their_own_detached_export(api: ApiClient) -> None:
    shared = await make_connection(api, "Shared")
    export_id = await export_by(api, "contributor", "carl", shared)
    await as_user(api, "contributor", "carl", DETACH, {"id": export_id})

    removed = await as_user(api, "contributor", "carl", REMOVE, {"id": export_id})

    assert removed["removeExport"] == {"removedId": export_id, "userErrors": []}
