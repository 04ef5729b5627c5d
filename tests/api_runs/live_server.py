"""A real uvicorn server on a free port serving the app for given settings, for tests that
need real HTTP connections or websockets (limits, token expiry on an open socket)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from service.access.auth import mint_token
from service.core import Services, open_services
from service.domain import Role
from service.settings import Settings
from tests.support.served import serving

GRAPHQL_TRANSPORT_WS = Subprotocol("graphql-transport-ws")
RECEIVE_TIMEOUT_SECONDS = 30.0


@dataclass
class LiveServer:
    services: Services
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/graphql"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/graphql"

    def token(self, role: Role, sub: str = "alice", ttl: timedelta = timedelta(hours=1)) -> str:
        return mint_token(self.services.settings, sub, [role], ttl=ttl)

    @asynccontextmanager
    async def socket(self, token: str) -> AsyncIterator[ClientConnection]:
        """A graphql-transport-ws socket, acknowledged for ``token``."""
        async with connect(self.ws_url, subprotocols=[GRAPHQL_TRANSPORT_WS]) as ws:
            init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
            await ws.send(json.dumps(init))
            ack = await receive(ws)
            assert ack["type"] == "connection_ack", ack
            yield ws


async def subscribe(
    ws: ClientConnection, operation_id: str, query: str, variables: dict[str, Any] | None = None
) -> None:
    payload = {"query": query, "variables": variables or {}}
    await ws.send(json.dumps({"id": operation_id, "type": "subscribe", "payload": payload}))


async def receive(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), RECEIVE_TIMEOUT_SECONDS))
    return message


@asynccontextmanager
async def live_server(settings: Settings, **options: Any) -> AsyncIterator[LiveServer]:
    """Open the services for ``settings`` and serve them; ``options`` go to open_services."""
    async with (
        open_services(settings, load_entry_points=False, **options) as services,
        serving(services) as port,
    ):
        yield LiveServer(services, "127.0.0.1", port)
