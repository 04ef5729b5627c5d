"""GraphQL documents and setup helpers shared by the API tests."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import ApiClient

LIST_ID = "4a9c0f7e-2b8d-4c1e-9f3a-5d6e7f809a1b"

UPSERT_SEGMENT = """
mutation($input: UpsertSegmentInput!) {
  upsertSegment(input: $input) { segment { id name } userErrors { field message code } }
}"""

CREATE_CONNECTION = """
mutation($input: CreateConnectionInput!) {
  createConnection(input: $input) {
    connection { id displayName status usableBy settings dataPrivacyAcceptedBy }
    userErrors { field message code }
  }
}"""

CREATE_EXPORT = """
mutation($input: CreateExportInput!) {
  createExport(input: $input) {
    export { id displayName settings canEdit connection { id } segments { id } }
    userErrors { field message code }
  }
}"""

COUNTS = """{ exports { totalCount } connections { totalCount } segments { totalCount } }"""


async def make_segment(api: ApiClient, name: str = "Newsletter") -> str:
    data = await api.data(UPSERT_SEGMENT, {"input": {"name": name}})
    assert data["upsertSegment"]["userErrors"] == []
    segment_id: str = data["upsertSegment"]["segment"]["id"]
    return segment_id


async def make_connection(
    api: ApiClient, name: str = "Main account", usable_by: str = "ADMINS_AND_CONTRIBUTORS"
) -> str:
    data = await api.data(
        CREATE_CONNECTION,
        {
            "input": {
                "destinationType": "test_dest",
                "displayName": name,
                "usableBy": usable_by,
                "acceptDataPrivacy": True,
                "settings": {"region": "eu"},
            }
        },
    )
    assert data["createConnection"]["userErrors"] == []
    connection_id: str = data["createConnection"]["connection"]["id"]
    return connection_id


def export_input(connection_id: str, segment_ids: list[str], **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "displayName": "Weekly newsletter",
        "connectionId": connection_id,
        "settings": {"listId": LIST_ID},
        "fieldMapping": [
            {"source": "EmailAddress", "target": "email"},
            {"source": "FirstName", "target": "first_name"},
        ],
        "segmentIds": segment_ids,
    }
    values.update(overrides)
    return values


async def make_export(api: ApiClient, connection_id: str, segment_id: str) -> str:
    data = await api.data(CREATE_EXPORT, {"input": export_input(connection_id, [segment_id])})
    assert data["createExport"]["userErrors"] == []
    export_id: str = data["createExport"]["export"]["id"]
    return export_id


async def counts(api: ApiClient) -> dict[str, int]:
    data = await api.data(COUNTS)
    return {name: value["totalCount"] for name, value in data.items()}
