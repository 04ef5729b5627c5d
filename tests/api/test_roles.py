"""api.md's permission table, operation by operation, for every role and for no token."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import jwt
import pytest

from service.access.auth import mint_token
from service.domain import Role
from tests.api.conftest import ApiClient
from tests.api.operations import (
    CREATE_CONNECTION,
    LIST_ID,
    counts,
    make_connection,
    make_export,
    make_segment,
)

ALLOWED = "allowed"
FORBIDDEN = "FORBIDDEN"

# operation -> expected outcome for admin, contributor, viewer.
# Documents use $connectionId / $segmentId / $exportId, made by the admin first;
# the connection is usable by contributors, so contributors may manage its exports.
MATRIX: list[tuple[str, str, tuple[str, str, str]]] = [
    ("viewer", "{ viewer { sub } }", (ALLOWED, ALLOWED, ALLOWED)),
    ("destinationTypes", "{ destinationTypes { key } }", (ALLOWED, ALLOWED, ALLOWED)),
    ("segments", "{ segments { totalCount } }", (ALLOWED, ALLOWED, ALLOWED)),
    ("profileAttributes", "{ profileAttributes }", (ALLOWED, ALLOWED, ALLOWED)),
    ("exports", "{ exports { totalCount } }", (ALLOWED, ALLOWED, ALLOWED)),
    ("exportRuns", "{ exportRuns { totalCount } }", (ALLOWED, ALLOWED, ALLOWED)),
    ("refreshSchedule", "{ refreshSchedule { enabled } }", (ALLOWED, ALLOWED, ALLOWED)),
    ("connections", "{ connections { totalCount } }", (ALLOWED, ALLOWED, FORBIDDEN)),
    (
        "upsertSegment",
        'mutation { upsertSegment(input: {name: "Other"}) { userErrors { code } } }',
        (ALLOWED, FORBIDDEN, FORBIDDEN),
    ),
    (
        "upsertProfiles",
        'mutation { upsertProfiles(input: {profiles: [{id: "p1", attributes: {}}]}) '
        "{ userErrors { code } } }",
        (ALLOWED, FORBIDDEN, FORBIDDEN),
    ),
    (
        "createConnection",
        'mutation { createConnection(input: {destinationType: "test_dest", displayName: "X", '
        "acceptDataPrivacy: true}) { userErrors { code } } }",
        (ALLOWED, FORBIDDEN, FORBIDDEN),
    ),
    (
        "updateConnection",
        "mutation($connectionId: ID!) { updateConnection(input: {id: $connectionId, "
        'displayName: "Renamed"}) { userErrors { code } } }',
        (ALLOWED, FORBIDDEN, FORBIDDEN),
    ),
    (
        "addExportUser",
        "mutation($connectionId: ID!) { addExportUser(input: {connectionId: $connectionId}) "
        "{ userErrors { code } } }",
        (ALLOWED, FORBIDDEN, FORBIDDEN),
    ),
    (
        "authorizeConnection",
        "mutation($connectionId: ID!) { authorizeConnection(input: {connectionId: "
        "$connectionId}) { userErrors { code } } }",
        (ALLOWED, FORBIDDEN, FORBIDDEN),
    ),
    (
        "completeConnectionAuthorization",
        'mutation { completeConnectionAuthorization(input: {state: "s", code: "c"}) '
        "{ userErrors { code } } }",
        (ALLOWED, FORBIDDEN, FORBIDDEN),
    ),
    (
        "removeConnection",
        "mutation($connectionId: ID!) { removeConnection(input: {id: $connectionId, "
        "exports: DETACH}) { userErrors { code } } }",
        (ALLOWED, FORBIDDEN, FORBIDDEN),
    ),
    (
        "createExport",
        "mutation($connectionId: ID!, $segmentId: ID!) { createExport(input: {displayName: "
        f'"E2", connectionId: $connectionId, settings: {{listId: "{LIST_ID}"}}, '
        'fieldMapping: [{source: "Email", target: "email"}], segmentIds: [$segmentId]}) '
        "{ userErrors { code } } }",
        (ALLOWED, ALLOWED, FORBIDDEN),
    ),
    (
        "updateExport",
        'mutation($exportId: ID!) { updateExport(input: {id: $exportId, displayName: "R"}) '
        "{ userErrors { code } } }",
        (ALLOWED, ALLOWED, FORBIDDEN),
    ),
    (
        "duplicateExport",
        "mutation($exportId: ID!) { duplicateExport(input: {id: $exportId}) "
        "{ userErrors { code } } }",
        (ALLOWED, ALLOWED, FORBIDDEN),
    ),
    (
        "detachConnection",
        "mutation($exportId: ID!) { detachConnection(input: {exportId: $exportId}) "
        "{ userErrors { code } } }",
        (ALLOWED, ALLOWED, FORBIDDEN),
    ),
    (
        "attachConnection",
        "mutation($exportId: ID!, $connectionId: ID!) { attachConnection(input: "
        "{exportId: $exportId, connectionId: $connectionId}) { userErrors { code } } }",
        (ALLOWED, ALLOWED, FORBIDDEN),
    ),
    (
        "removeExport",
        "mutation($exportId: ID!) { removeExport(input: {id: $exportId}) { userErrors { code } } }",
        (ALLOWED, ALLOWED, FORBIDDEN),
    ),
    (
        "updateRefreshSchedule",
        "mutation { updateRefreshSchedule(input: {enabled: true}) { userErrors { code } } }",
        (ALLOWED, FORBIDDEN, FORBIDDEN),
    ),
]

CASES = [
    pytest.param(document, role, expected[index], id=f"{name}-{role}")
    for name, document, expected in MATRIX
    for index, role in enumerate(("admin", "contributor", "viewer"))
] + [
    pytest.param(document, None, "UNAUTHENTICATED", id=f"{name}-no-token")
    for name, document, _ in MATRIX
]


def _used_variables(document: str, values: dict[str, str]) -> dict[str, Any]:
    return {name: value for name, value in values.items() if f"${name}" in document}


@pytest.mark.parametrize(("document", "role", "expected"), CASES)
async def test_each_operation_answers_as_the_permission_table_says(
    api: ApiClient, document: str, role: str | None, expected: str
) -> None:
    segment_id = await make_segment(api)
    connection_id = await make_connection(api)
    export_id = await make_export(api, connection_id, segment_id)
    variables = _used_variables(
        document,
        {"connectionId": connection_id, "segmentId": segment_id, "exportId": export_id},
    )

    body = await api.post(document, variables, role=role)

    codes = [error.get("extensions", {}).get("code") for error in body.get("errors", [])]
    if expected == ALLOWED:
        assert FORBIDDEN not in codes, body
        assert "UNAUTHENTICATED" not in codes, body
        assert body["data"] is not None
        # The only refusals an allowed caller may see are about the object, as userErrors.
        for payload in body["data"].values():
            if isinstance(payload, dict) and "userErrors" in payload:
                assert all(e["code"] != FORBIDDEN for e in payload["userErrors"]), payload
    else:
        assert codes, body
        assert set(codes) == {expected}, body


async def test_contributor_may_not_manage_exports_on_an_admins_only_connection(
    api: ApiClient,
) -> None:
    segment_id = await make_segment(api)
    private = await make_connection(api, "Admins only", usable_by="ADMINS")
    export_id = await make_export(api, private, segment_id)

    body = await api.data(
        'mutation($id: ID!) { updateExport(input: {id: $id, displayName: "Hijacked"}) '
        "{ export { id } userErrors { field code } } }",
        {"id": export_id},
        role="contributor",
    )

    assert body["updateExport"] == {
        "export": None,
        "userErrors": [{"field": ["id"], "code": "FORBIDDEN"}],
    }
    seen = await api.data(
        "{ exports { edges { node { displayName canEdit connection { id } } } } }",
        role="contributor",
    )
    assert seen["exports"]["edges"] == [
        {"node": {"displayName": "Weekly newsletter", "canEdit": False, "connection": None}}
    ]


async def test_contributor_lists_only_shared_connections_and_sees_no_details(
    api: ApiClient,
) -> None:
    await make_connection(api, "Admins only", usable_by="ADMINS")
    await make_connection(api, "Shared", usable_by="ADMINS_AND_CONTRIBUTORS")
    query = (
        "{ connections { totalCount edges { node { displayName destinationType { key } "
        "status account exportUser dataPrivacyAcceptedBy dataPrivacyAcceptedAt settings } } } }"
    )

    as_contributor = await api.data(query, role="contributor")
    as_admin = await api.data(query, role="admin")

    assert as_contributor["connections"]["totalCount"] == 1
    assert as_contributor["connections"]["edges"] == [
        {
            "node": {
                "displayName": "Shared",
                "destinationType": {"key": "test_dest"},
                "status": None,
                "account": None,
                "exportUser": None,
                "dataPrivacyAcceptedBy": None,
                "dataPrivacyAcceptedAt": None,
                "settings": None,
            }
        }
    ]
    assert as_admin["connections"]["totalCount"] == 2
    assert {e["node"]["status"] for e in as_admin["connections"]["edges"]} == {"CONNECTED"}
    assert as_admin["connections"]["edges"][0]["node"]["dataPrivacyAcceptedBy"] == "admin-user"


async def test_node_hides_connections_the_caller_may_not_see(api: ApiClient) -> None:
    private = await make_connection(api, "Admins only", usable_by="ADMINS")
    query = "query($id: ID!) { node(id: $id) { id ... on Connection { displayName } } }"

    assert (await api.data(query, {"id": private}, role="admin"))["node"]["id"] == private
    assert (await api.data(query, {"id": private}, role="contributor"))["node"] is None
    assert (await api.data(query, {"id": private}, role="viewer"))["node"] is None


def _bad_tokens(api: ApiClient) -> dict[str, str]:
    settings = api.services.settings
    other_key = jwt.encode(
        {"sub": "mallory", "roles": ["admin"], "exp": 4102444800},
        "another-secret-another-secret-another-secret",
        algorithm="HS256",
    )
    expired = mint_token(settings, "alice", [Role.ADMIN], ttl=timedelta(seconds=-60))
    unknown_role = jwt.encode(
        {"sub": "alice", "roles": ["superuser"], "exp": 4102444800},
        settings.jwt_secret_value(),
        algorithm="HS256",
    )
    return {
        "signed with another key": f"Bearer {other_key}",
        "expired": f"Bearer {expired}",
        "unknown role": f"Bearer {unknown_role}",
        "not a bearer token": "Basic YWxpY2U6c2VjcmV0",
    }


@pytest.mark.parametrize(
    "kind", ["signed with another key", "expired", "unknown role", "not a bearer token"]
)
async def test_a_bad_token_is_unauthenticated_and_changes_nothing(
    api: ApiClient, kind: str
) -> None:
    before = await counts(api)
    authorization = _bad_tokens(api)[kind]

    body = await api.post(
        'mutation { upsertSegment(input: {name: "Intruders"}) { segment { id } } }',
        authorization=authorization,
    )

    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
    assert "Intruders" not in str(body)
    assert await counts(api) == before


async def test_connection_settings_marked_secret_are_encrypted_and_never_returned(
    api: ApiClient,
) -> None:
    data = await api.data(
        CREATE_CONNECTION,
        {
            "input": {
                "destinationType": "test_dest",
                "displayName": "With token",
                "acceptDataPrivacy": True,
                "settings": {"apiToken": "tok-very-secret-123", "region": "eu"},
            }
        },
    )

    connection = data["createConnection"]["connection"]
    assert connection["settings"] == {"region": "eu"}
    assert "tok-very-secret-123" not in str(data)
    stored = await api.services.store.list_connections(10)
    record = stored.items[0]
    assert record.credentials is not None
    assert "tok-very-secret-123" not in record.credentials
    assert api.services.cipher.decrypt(record.credentials)["secrets"] == {
        "apiToken": "tok-very-secret-123"
    }
