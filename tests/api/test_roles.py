"""api.md's permission table, operation by operation, for every role and for no token.

Every root field of the schema has its row: :func:`test_the_matrix_names_every_root_field`
fails when a field is added without one.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import jwt
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from service.access.auth import mint_token
from service.api.ids import to_global_id
from service.domain import Role
from tests.api.conftest import ApiClient, ServedApi
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

MISSING_EXPORT_ID = to_global_id("Export", "no-such-export")
MISSING_RUN_ID = to_global_id("ExportRun", "no-such-run")

# root field -> a document using it, and the expected outcome for admin, contributor, viewer.
# Documents use $connectionId / $segmentId / $exportId, made by the admin first;
# the connection is usable by contributors, so contributors may manage its exports.
# Runs are asked for exports and runs that do not exist: the API tests carry no runs.
MATRIX: list[tuple[str, str, tuple[str, str, str]]] = [
    ("Query.viewer", "{ viewer { sub } }", (ALLOWED, ALLOWED, ALLOWED)),
    (
        "Query.node",
        "query($exportId: ID!) { node(id: $exportId) { id } }",
        (ALLOWED, ALLOWED, ALLOWED),
    ),
    ("Query.destinationTypes", "{ destinationTypes { key } }", (ALLOWED, ALLOWED, ALLOWED)),
    ("Query.segments", "{ segments { totalCount } }", (ALLOWED, ALLOWED, ALLOWED)),
    ("Query.profileAttributes", "{ profileAttributes }", (ALLOWED, ALLOWED, ALLOWED)),
    ("Query.exports", "{ exports { totalCount } }", (ALLOWED, ALLOWED, ALLOWED)),
    ("Query.exportRuns", "{ exportRuns { totalCount } }", (ALLOWED, ALLOWED, ALLOWED)),
    ("Query.refreshSchedule", "{ refreshSchedule { enabled } }", (ALLOWED, ALLOWED, ALLOWED)),
    (
        "Query.upcomingRunTimes",
        '{ upcomingRunTimes(recurrence: {frequency: DAILY, times: ["06:00"], timeZone: "UTC"}) }',
        (ALLOWED, ALLOWED, ALLOWED),
    ),
    ("Query.connections", "{ connections { totalCount } }", (ALLOWED, ALLOWED, FORBIDDEN)),
    (
        "Query.exportSettingChoices",
        "query($connectionId: ID!) { exportSettingChoices(connectionId: $connectionId, "
        'setting: "listId") { id } }',
        (ALLOWED, ALLOWED, FORBIDDEN),
    ),
    (
        "Mutation.upsertSegment",
        'mutation { upsertSegment(input: {name: "Other"}) { userErrors { code } } }',
        (ALLOWED, FORBIDDEN, FORBIDDEN),
    ),
    (
        "Mutation.upsertProfiles",
        'mutation { upsertProfiles(input: {profiles: [{id: "p1", attributes: {}}]}) '
        "{ userErrors { code } } }",
        (ALLOWED, FORBIDDEN, FORBIDDEN),
    ),
    (
        "Mutation.createConnection",
        'mutation { createConnection(input: {destinationType: "test_dest", displayName: "X", '
        "acceptDataPrivacy: true}) { userErrors { code } } }",
        (ALLOWED, FORBIDDEN, FORBIDDEN),
    ),
    (
        "Mutation.updateConnection",
        "mutation($connectionId: ID!) { updateConnection(input: {id: $connectionId, "
        'displayName: "Renamed"}) { userErrors { code } } }',
        (ALLOWED, FORBIDDEN, FORBIDDEN),
    ),
    (
        "Mutation.replaceConnectionSecrets",
        "mutation($connectionId: ID!) { replaceConnectionSecrets(input: {connectionId: "
        '$connectionId, settings: {apiKey: "k"}}) { userErrors { code } } }',
        (ALLOWED, FORBIDDEN, FORBIDDEN),
    ),
    (
        "Mutation.addExportUser",
        "mutation($connectionId: ID!) { addExportUser(input: {connectionId: $connectionId}) "
        "{ userErrors { code } } }",
        (ALLOWED, FORBIDDEN, FORBIDDEN),
    ),
    (
        "Mutation.authorizeConnection",
        "mutation($connectionId: ID!) { authorizeConnection(input: {connectionId: "
        "$connectionId}) { userErrors { code } } }",
        (ALLOWED, FORBIDDEN, FORBIDDEN),
    ),
    (
        "Mutation.completeConnectionAuthorization",
        'mutation { completeConnectionAuthorization(input: {state: "s", code: "c"}) '
        "{ userErrors { code } } }",
        (ALLOWED, FORBIDDEN, FORBIDDEN),
    ),
    (
        "Mutation.removeConnection",
        "mutation($connectionId: ID!) { removeConnection(input: {id: $connectionId, "
        "exports: DETACH}) { userErrors { code } } }",
        (ALLOWED, FORBIDDEN, FORBIDDEN),
    ),
    (
        "Mutation.createExport",
        "mutation($connectionId: ID!, $segmentId: ID!) { createExport(input: {displayName: "
        f'"E2", connectionId: $connectionId, settings: {{listId: "{LIST_ID}"}}, '
        'fieldMapping: [{source: "Email", target: "email"}], segmentIds: [$segmentId]}) '
        "{ userErrors { code } } }",
        (ALLOWED, ALLOWED, FORBIDDEN),
    ),
    (
        "Mutation.updateExport",
        'mutation($exportId: ID!) { updateExport(input: {id: $exportId, displayName: "R"}) '
        "{ userErrors { code } } }",
        (ALLOWED, ALLOWED, FORBIDDEN),
    ),
    (
        "Mutation.duplicateExport",
        "mutation($exportId: ID!) { duplicateExport(input: {id: $exportId}) "
        "{ userErrors { code } } }",
        (ALLOWED, ALLOWED, FORBIDDEN),
    ),
    (
        "Mutation.detachConnection",
        "mutation($exportId: ID!) { detachConnection(input: {exportId: $exportId}) "
        "{ userErrors { code } } }",
        (ALLOWED, ALLOWED, FORBIDDEN),
    ),
    (
        "Mutation.attachConnection",
        "mutation($exportId: ID!, $connectionId: ID!) { attachConnection(input: "
        "{exportId: $exportId, connectionId: $connectionId}) { userErrors { code } } }",
        (ALLOWED, ALLOWED, FORBIDDEN),
    ),
    (
        "Mutation.removeExport",
        "mutation($exportId: ID!) { removeExport(input: {id: $exportId}) { userErrors { code } } }",
        (ALLOWED, ALLOWED, FORBIDDEN),
    ),
    (
        "Mutation.runExport",
        "mutation($missingExportId: ID!) { runExport(input: {exportId: $missingExportId}) "
        "{ userErrors { code } } }",
        (ALLOWED, ALLOWED, FORBIDDEN),
    ),
    (
        "Mutation.previewExport",
        "mutation($missingExportId: ID!) { previewExport(input: {exportId: $missingExportId}) "
        "{ userErrors { code } } }",
        (ALLOWED, ALLOWED, FORBIDDEN),
    ),
    (
        "Mutation.runAllExports",
        "mutation { runAllExports(input: {}) { userErrors { code } } }",
        (ALLOWED, ALLOWED, FORBIDDEN),
    ),
    (
        "Mutation.cancelExportRun",
        "mutation($missingRunId: ID!) { cancelExportRun(input: {runId: $missingRunId}) "
        "{ userErrors { code } } }",
        (ALLOWED, ALLOWED, FORBIDDEN),
    ),
    (
        "Mutation.updateRefreshSchedule",
        "mutation { updateRefreshSchedule(input: {enabled: true}) { userErrors { code } } }",
        (ALLOWED, FORBIDDEN, FORBIDDEN),
    ),
    (
        "Query.destinationPauses",
        "{ destinationPauses { destinationType until reason } }",
        (ALLOWED, FORBIDDEN, FORBIDDEN),
    ),
    (
        "Mutation.liftDestinationPause",
        'mutation { liftDestinationPause(input: {destinationType: "test_dest"}) '
        "{ userErrors { code } } }",
        (ALLOWED, FORBIDDEN, FORBIDDEN),
    ),
]

# Subscriptions, over a websocket: an allowed caller gets the error that ends the stream
# (the run does not exist, the export id is not one), a refused one gets FORBIDDEN.
SUBSCRIPTION_MATRIX: list[tuple[str, str, dict[str, str], str, tuple[str, str, str]]] = [
    (
        "Subscription.exportRun",
        "subscription($id: ID!) { exportRun(id: $id) { id } }",
        {"id": MISSING_RUN_ID},
        "NOT_FOUND",
        (ALLOWED, ALLOWED, ALLOWED),
    ),
    (
        "Subscription.exportRuns",
        "subscription($exportId: ID) { exportRuns(exportId: $exportId) { id } }",
        {"exportId": "not-an-id"},
        "BAD_USER_INPUT",
        (ALLOWED, ALLOWED, ALLOWED),
    ),
]

ROLES = ("admin", "contributor", "viewer")

CASES = [
    pytest.param(document, role, expected[index], id=f"{name}-{role}")
    for name, document, expected in MATRIX
    for index, role in enumerate(ROLES)
] + [
    pytest.param(document, None, "UNAUTHENTICATED", id=f"{name}-no-token")
    for name, document, _ in MATRIX
]

SUBSCRIPTION_CASES = [
    pytest.param(document, variables, role, ending, expected[index], id=f"{name}-{role}")
    for name, document, variables, ending, expected in SUBSCRIPTION_MATRIX
    for index, role in enumerate(ROLES)
] + [
    pytest.param(document, variables, None, ending, "UNAUTHENTICATED", id=f"{name}-no-token")
    for name, document, variables, ending, _ in SUBSCRIPTION_MATRIX
]

ROOT_FIELDS = """{ __schema {
  queryType { name fields { name } }
  mutationType { name fields { name } }
  subscriptionType { name fields { name } }
} }"""


async def test_the_matrix_names_every_root_field(api: ApiClient) -> None:
    schema = (await api.data(ROOT_FIELDS))["__schema"]
    root_fields = {
        f"{root['name']}.{field['name']}"
        for root in (schema["queryType"], schema["mutationType"], schema["subscriptionType"])
        for field in root["fields"]
    }
    in_matrix = [name for name, _, _ in MATRIX] + [name for name, *_ in SUBSCRIPTION_MATRIX]

    assert len(in_matrix) == len(set(in_matrix)), "a root field has two rows"
    assert sorted(root_fields - set(in_matrix)) == [], "root fields without a matrix row"
    assert sorted(set(in_matrix) - root_fields) == [], "matrix rows naming no root field"


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
        {
            "connectionId": connection_id,
            "segmentId": segment_id,
            "exportId": export_id,
            "missingExportId": MISSING_EXPORT_ID,
            "missingRunId": MISSING_RUN_ID,
        },
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


async def _subscription_codes(
    served: ServedApi, document: str, variables: dict[str, str], role: str | None
) -> list[str]:
    """The error codes a subscription ends with (UNAUTHENTICATED: refused at connection_init)."""
    init: dict[str, Any] = {"type": "connection_init"}
    if role is not None:
        init["payload"] = {"Authorization": f"Bearer {served.api.token(role)}"}
    async with connect(served.ws_url, subprotocols=[served.subprotocol]) as ws:
        await ws.send(json.dumps(init))
        if role is None:
            with pytest.raises(ConnectionClosed) as refused:
                await ws.recv()
            # The server refuses a connection without a valid token with 4403.
            assert refused.value.rcvd is not None
            assert refused.value.rcvd.code == 4403
            return ["UNAUTHENTICATED"]
        ack = json.loads(await ws.recv())
        assert ack["type"] == "connection_ack", ack
        subscribe = {"query": document, "variables": variables}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": subscribe}))
        message = json.loads(await ws.recv())
    assert message["type"] in ("next", "error"), message
    payload = message["payload"]
    errors: list[dict[str, Any]] = payload if message["type"] == "error" else payload["errors"]
    return [error.get("extensions", {}).get("code") for error in errors]


@pytest.mark.parametrize(
    ("document", "variables", "role", "ending", "expected"), SUBSCRIPTION_CASES
)
async def test_each_subscription_answers_as_the_permission_table_says(
    served_api: ServedApi,
    document: str,
    variables: dict[str, str],
    role: str | None,
    ending: str,
    expected: str,
) -> None:
    codes = await _subscription_codes(served_api, document, variables, role)

    assert codes == [ending if expected == ALLOWED else expected]


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
