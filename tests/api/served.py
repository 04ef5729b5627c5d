"""The segport app on real services, served by uvicorn on a free port (HTTP and websockets).

For the limits tests, which need the settings' defaults (``tests/api/conftest``
shrinks them) and a real server on both transports.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from service.access.auth import mint_token
from service.core import Services, open_services
from service.domain import Role
from service.settings import Settings
from tests.api import destination_fixture
from tests.support.served import serving


@dataclass(frozen=True)
class Served:
    services: Services
    http_url: str
    ws_url: str

    def bearer(self, role: Role = Role.ADMIN, sub: str = "alice") -> str:
        return f"Bearer {mint_token(self.services.settings, sub, [role])}"

    @asynccontextmanager
    async def socket(self, role: Role = Role.ADMIN) -> AsyncIterator[ClientConnection]:
        """A graphql-transport-ws socket, initialised with a token for ``role``."""
        protocol = Subprotocol(GRAPHQL_TRANSPORT_WS_PROTOCOL)
        async with connect(self.ws_url, subprotocols=[protocol], max_size=None) as ws:
            init = {"type": "connection_init", "payload": {"Authorization": self.bearer(role)}}
            await ws.send(json.dumps(init))
            ack = json.loads(await ws.recv())
            assert ack["type"] == "connection_ack", ack
            yield ws


async def subscribe(ws: ClientConnection, query: str, operation_id: str = "1") -> dict[str, Any]:
    """Send ``query`` and return the first message answering it."""
    message = {"id": operation_id, "type": "subscribe", "payload": {"query": query}}
    await ws.send(json.dumps(message))
    answer: dict[str, Any] = json.loads(await ws.recv())
    return answer


@asynccontextmanager
async def served(settings: Settings) -> AsyncIterator[Served]:
    """Services opened on ``settings`` (with the test destination), and the app serving them."""
    async with (
        open_services(
            settings, extra_plugins=[destination_fixture], load_entry_points=False
        ) as services,
        serving(services) as port,
    ):
        yield Served(
            services=services,
            http_url=f"http://127.0.0.1:{port}/graphql",
            ws_url=f"ws://127.0.0.1:{port}/graphql",
        )
