"""Through the GraphQL API, the installed toy plugin is a destination like any other: it is
listed in ``destinationTypes``, its API key is checked against the collector when a connection
is made, and its export settings and mapping are validated, with no code of its own in
``service/``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.access.auth import mint_token
from service.app import create_app
from service.core import open_services
from service.domain import Role
from service.settings import Settings
from tests.plugins.toy_collector import ACCOUNT_NAME, API_KEY

CREATE_CONNECTION = """
mutation($input: CreateConnectionInput!) {
  createConnection(input: $input) {
    connection { id status account }
    userErrors { field message code }
  }
}"""

CREATE_EXPORT = """
mutation($input: CreateExportInput!) {
  createExport(input: $input) {
    export { id settings }
    userErrors { field message code }
  }
}"""


class Api:
    def __init__(self, client: httpx.AsyncClient, token: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    async def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        response = await self.client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=self.headers
        )
        body = response.json()
        assert "errors" not in body, body
        return dict(body["data"])


@pytest.fixture
async def api(toy_env: str, tmp_path: Path) -> AsyncIterator[Api]:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'segport.db'}").with_secrets()
    async with open_services(settings) as services:
        transport = httpx.ASGITransport(app=create_app(services))
        async with httpx.AsyncClient(transport=transport, base_url="http://segport") as client:
            yield Api(client, mint_token(settings, "admin", [Role.ADMIN]))


async def _connect(api: Api, api_key: str) -> dict[str, Any]:
    data = await api(
        CREATE_CONNECTION,
        input={
            "destinationType": "toy_webhook",
            "displayName": "Collector",
            "acceptDataPrivacy": True,
            "settings": {"apiKey": api_key},
        },
    )
    return dict(data["createConnection"])


async def test_destination_types_lists_the_toy_destination_as_declared(api: Api) -> None:
    data = await api(
        """{ destinationTypes { key displayName authKind
             connectionSettings { name required secret }
             exportSettings { name required }
             mappingTargets { name required maxLength } } }"""
    )
    [toy] = [d for d in data["destinationTypes"] if d["key"] == "toy_webhook"]
    assert toy == {
        "key": "toy_webhook",
        "displayName": "Webhook collector",
        "authKind": "api_key",
        "connectionSettings": [{"name": "apiKey", "required": True, "secret": True}],
        "exportSettings": [{"name": "endpoint", "required": True}],
        "mappingTargets": [
            {"name": "email", "required": True, "maxLength": 254},
            {"name": "name", "required": False, "maxLength": 100},
        ],
    }


async def test_a_connection_with_the_right_api_key_is_connected_to_the_collector_account(
    api: Api, collector: Any
) -> None:
    payload = await _connect(api, API_KEY)
    assert payload["userErrors"] == []
    assert payload["connection"]["status"] == "CONNECTED"
    assert payload["connection"]["account"] == ACCOUNT_NAME


async def test_a_wrong_api_key_is_refused_and_never_echoed(api: Api, collector: Any) -> None:
    payload = await _connect(api, "wrong-key-987")
    assert payload["connection"] is None
    assert payload["userErrors"]
    assert "wrong-key-987" not in str(payload)


async def test_export_settings_and_mapping_are_validated_by_the_plugin(
    api: Api, collector: Any
) -> None:
    connection = (await _connect(api, API_KEY))["connection"]
    segment = await api(
        'mutation { upsertSegment(input: {name: "Toy"}) { segment { id } userErrors { message } } }'
    )
    data = await api(
        CREATE_EXPORT,
        input={
            "displayName": "To the collector",
            "connectionId": connection["id"],
            "settings": {"endpoint": "Bad Name!"},
            "fieldMapping": [{"source": "fullName", "target": "name"}],
            "segmentIds": [segment["upsertSegment"]["segment"]["id"]],
        },
    )
    errors = data["createExport"]["userErrors"]
    messages = " | ".join(e["message"] for e in errors)
    assert data["createExport"]["export"] is None
    assert "'Bad Name!'" in messages
    assert "E-mail address must be mapped" in messages
