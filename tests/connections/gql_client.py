"""A GraphQL client for the connection tests: real HTTP to the served app, every answer kept.

Keeping the raw text of every answer lets a test assert afterwards that no
response of a whole flow carried a secret.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from service.access.auth import mint_token
from service.core import Services
from service.domain import Role

CREATE_CONNECTION = """
mutation($input: CreateConnectionInput!) {
  createConnection(input: $input) {
    connection { id displayName status account usableBy }
    userErrors { field message code }
  }
}"""

AUTHORIZE_CONNECTION = """
mutation($id: ID!) {
  authorizeConnection(input: {connectionId: $id}) {
    authorizationUrl
    connection { id status }
    userErrors { field message code }
  }
}"""

COMPLETE_AUTHORIZATION = """
mutation($state: String!, $code: String!) {
  completeConnectionAuthorization(input: {state: $state, code: $code}) {
    connection { id status account }
    userErrors { field message code }
  }
}"""

CONNECTION = """
query($id: ID!) {
  node(id: $id) {
    ... on Connection { id displayName status statusMessage account exportUser updatedAt }
  }
}"""

ADD_EXPORT_USER = """
mutation($id: ID!) {
  addExportUser(input: {connectionId: $id}) {
    connection { id exportUser }
    userErrors { field message code }
  }
}"""

SETTING_CHOICES = """
query($connectionId: ID!, $setting: String!) {
  exportSettingChoices(connectionId: $connectionId, setting: $setting) { id name memberCount }
}"""

UPSERT_SEGMENT = """
mutation($name: String!) {
  upsertSegment(input: {name: $name}) { segment { id } userErrors { field message code } }
}"""

CREATE_EXPORT = """
mutation($input: CreateExportInput!) {
  createExport(input: $input) {
    export { id displayName settings connection { id } }
    userErrors { field message code }
  }
}"""

EXPORT_COUNT = "{ exports { totalCount } }"


@dataclass
class GraphQLClient:
    """Posts GraphQL to ``<base_url>/graphql`` as a user with a role."""

    base_url: str
    services: Services
    answers: list[str] = field(default_factory=list)
    """The raw body of every answer, in order."""

    def token(self, sub: str, role: Role) -> str:
        return mint_token(self.services.settings, sub, [role])

    async def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        sub: str = "alice",
        role: Role = Role.ADMIN,
    ) -> dict[str, Any]:
        async with httpx.AsyncClient() as http:
            answer = await http.post(
                f"{self.base_url}/graphql",
                json={"query": query, "variables": variables or {}},
                headers={"Authorization": f"Bearer {self.token(sub, role)}"},
            )
        self.answers.append(answer.text)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    async def data(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        sub: str = "alice",
        role: Role = Role.ADMIN,
    ) -> dict[str, Any]:
        """The ``data`` of an operation that must not fail at the top level."""
        body = await self.post(query, variables, sub=sub, role=role)
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data

    async def error(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        sub: str = "alice",
        role: Role = Role.ADMIN,
    ) -> dict[str, Any]:
        """The one top-level error of an operation that must fail."""
        body = await self.post(query, variables, sub=sub, role=role)
        assert body.get("data") is None, body
        errors: list[dict[str, Any]] = body["errors"]
        assert len(errors) == 1, errors
        return errors[0]

    # -- steps of the connection flow -------------------------------------------------

    async def create_connection(
        self, name: str = "Marketing CC", usable_by: str = "ADMINS_AND_CONTRIBUTORS"
    ) -> str:
        data = await self.data(
            CREATE_CONNECTION,
            {
                "input": {
                    "destinationType": "constant_contact",
                    "displayName": name,
                    "usableBy": usable_by,
                    "acceptDataPrivacy": True,
                }
            },
        )
        payload = data["createConnection"]
        assert payload["userErrors"] == [], payload
        assert payload["connection"]["status"] == "PENDING_AUTHORIZATION"
        connection_id: str = payload["connection"]["id"]
        return connection_id

    async def authorize(self, connection_id: str, *, sub: str = "alice") -> str:
        data = await self.data(AUTHORIZE_CONNECTION, {"id": connection_id}, sub=sub)
        payload = data["authorizeConnection"]
        assert payload["userErrors"] == [], payload
        url: str = payload["authorizationUrl"]
        return url

    async def connection(self, connection_id: str) -> dict[str, Any]:
        node: dict[str, Any] = (await self.data(CONNECTION, {"id": connection_id}))["node"]
        return node

    async def segment(self, name: str = "Newsletter") -> str:
        payload = (await self.data(UPSERT_SEGMENT, {"name": name}))["upsertSegment"]
        assert payload["userErrors"] == [], payload
        segment_id: str = payload["segment"]["id"]
        return segment_id

    async def export_count(self) -> int:
        count: int = (await self.data(EXPORT_COUNT))["exports"]["totalCount"]
        return count


def export_input(connection_id: str, segment_id: str, list_id: str) -> dict[str, Any]:
    return {
        "displayName": "Newsletter to Constant Contact",
        "connectionId": connection_id,
        "settings": {"listId": list_id},
        "fieldMapping": [
            {"source": "EmailAddress", "target": "email"},
            {"source": "FirstName", "target": "first_name"},
        ],
        "segmentIds": [segment_id],
    }
