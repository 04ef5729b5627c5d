"""The API under test: real services (SQLite, the test destination plugin) behind the real app.

``api`` is an :class:`ApiClient` that posts GraphQL to the app over httpx
(``ASGITransport``) with a token for a role, or none. ``served_api`` serves the
same app with uvicorn, for what needs a real websocket (subscriptions).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from service.access.auth import mint_token
from service.app import create_app
from service.core import Services, open_services
from service.domain import Role
from tests.api import destination_fixture
from tests.support.settings import make_settings

MAX_PAGE_SIZE = 5
UPSERT_PROFILES_MAX = 3
MAX_QUERY_DEPTH = 8

ROLE_TOKENS = {"admin": [Role.ADMIN], "contributor": [Role.CONTRIBUTOR], "viewer": [Role.VIEWER]}


@dataclass
class ApiClient:
    http: httpx.AsyncClient
    services: Services

    def token(self, role: str, sub: str | None = None) -> str:
        return mint_token(self.services.settings, sub or f"{role}-user", ROLE_TOKENS[role])

    async def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        role: str | None = "admin",
        authorization: str | None = None,
    ) -> dict[str, Any]:
        headers = {}
        if authorization is not None:
            headers["Authorization"] = authorization
        elif role is not None:
            headers["Authorization"] = f"Bearer {self.token(role)}"
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(
        self, query: str, variables: dict[str, Any] | None = None, *, role: str = "admin"
    ) -> dict[str, Any]:
        """The ``data`` of an operation that must not fail at the top level."""
        body = await self.post(query, variables, role=role)
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data


@pytest.fixture
async def services(sqlite_url: str) -> AsyncIterator[Services]:
    settings = make_settings(
        sqlite_url,
        max_page_size=MAX_PAGE_SIZE,
        upsert_profiles_max=UPSERT_PROFILES_MAX,
        max_query_depth=MAX_QUERY_DEPTH,
        max_request_bytes=4096,
    )
    async with open_services(
        settings, extra_plugins=[destination_fixture], load_entry_points=False
    ) as opened:
        yield opened


@pytest.fixture
async def api(services: Services) -> AsyncIterator[ApiClient]:
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://segport.test") as http:
        yield ApiClient(http=http, services=services)


@dataclass
class ServedApi:
    api: ApiClient
    ws_url: str
    subprotocol: Any = GRAPHQL_TRANSPORT_WS_PROTOCOL
    """What the websocket asks for (typed Any: websockets wants its own Subprotocol type)."""


@pytest.fixture
async def served_api(api: ApiClient) -> AsyncIterator[ServedApi]:
    config = uvicorn.Config(create_app(api.services), host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield ServedApi(api=api, ws_url=f"ws://127.0.0.1:{port}/graphql")
    finally:
        server.should_exit = True
        await task
