"""``Connection.ready``: whether exports can run through a connection now (issue 10, item 23).

Contributors may not see a connection's status, yet need to know whether an
export on it can run. ``ready`` is visible to whoever sees the connection
(admins, contributors on shared connections); why it is not ready stays with
admins. Over HTTP, per role.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from service.api.ids import from_global_id
from service.domain import ConnectionStatus
from tests.api.conftest import ApiClient
from tests.api.operations import make_connection, make_export, make_segment

CONNECTIONS = "{ connections { edges { node { displayName ready status statusMessage } } } }"
EXPORT_CONNECTION = "query($id: ID!) { node(id: $id) { ... on Export { connection { ready } } } }"


async def set_connection(api: ApiClient, global_id: str, **changes: Any) -> None:
    store = api.services.store
    connection = await store.get_connection(from_global_id(global_id)[1])
    assert connection is not None
    await store.save_connection(replace(connection, **changes))


async def test_admins_and_contributors_see_readiness_only_admins_see_why(api: ApiClient) -> None:
    ready = await make_connection(api, "Ready")
    expired = await make_connection(api, "Expired")
    await set_connection(
        api,
        expired,
        status=ConnectionStatus.NEEDS_REAUTHORIZATION,
        status_message="the refresh token was revoked",
    )

    as_admin = await api.data(CONNECTIONS, role="admin")
    as_contributor = await api.data(CONNECTIONS, role="contributor")
    as_viewer = await api.post(CONNECTIONS, role="viewer")

    assert [e["node"] for e in as_admin["connections"]["edges"]] == [
        {"displayName": "Ready", "ready": True, "status": "CONNECTED", "statusMessage": None},
        {
            "displayName": "Expired",
            "ready": False,
            "status": "NEEDS_REAUTHORIZATION",
            "statusMessage": "the refresh token was revoked",
        },
    ]
    assert [e["node"] for e in as_contributor["connections"]["edges"]] == [
        {"displayName": "Ready", "ready": True, "status": None, "statusMessage": None},
        {"displayName": "Expired", "ready": False, "status": None, "statusMessage": None},
    ]
    assert [e["extensions"]["code"] for e in as_viewer["errors"]] == ["FORBIDDEN"]
    assert ready != expired


async def test_a_pending_connection_or_a_missing_destination_is_not_ready(api: ApiClient) -> None:
    pending = await make_connection(api, "Pending")
    uninstalled = await make_connection(api, "Uninstalled")
    await set_connection(api, pending, status=ConnectionStatus.PENDING_AUTHORIZATION)
    await set_connection(api, uninstalled, destination_type="no_longer_installed")

    seen = await api.data(CONNECTIONS, role="contributor")

    assert [
        (e["node"]["displayName"], e["node"]["ready"]) for e in seen["connections"]["edges"]
    ] == [
        ("Pending", False),
        ("Uninstalled", False),
    ]


async def test_readiness_reaches_as_far_as_the_connection_does(api: ApiClient) -> None:
    segment_id = await make_segment(api)
    shared = await make_export(api, await make_connection(api, "Shared"), segment_id)
    private = await make_export(
        api, await make_connection(api, "Private", usable_by="ADMINS"), segment_id
    )

    contributor_shared = await api.data(EXPORT_CONNECTION, {"id": shared}, role="contributor")
    contributor_private = await api.data(EXPORT_CONNECTION, {"id": private}, role="contributor")
    viewer_shared = await api.data(EXPORT_CONNECTION, {"id": shared}, role="viewer")
    admin_private = await api.data(EXPORT_CONNECTION, {"id": private}, role="admin")

    assert contributor_shared["node"] == {"connection": {"ready": True}}
    assert contributor_private["node"] == {"connection": None}
    assert viewer_shared["node"] == {"connection": None}
    assert admin_private["node"] == {"connection": {"ready": True}}
