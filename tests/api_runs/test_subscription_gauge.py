"""``segport_active_subscriptions`` follows the websocket subscriptions that are open.

A real uvicorn server (embedded mode, SQLite) serves the app; clients subscribe
over a real websocket (graphql-transport-ws) and the gauge is read from the
server's ``/metrics`` over HTTP while they are open and after they end.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from service.access.auth import mint_token
from service.api.ids import to_global_id
from service.core import Services, open_services
from service.domain import (
    Export,
    ExportRun,
    ExportRunStatus,
    ExportRunTrigger,
    ExportSchedule,
    Role,
    new_id,
    utcnow,
)
from tests.support.served import serving
from tests.support.settings import make_settings

GAUGE = "segport_active_subscriptions"
ALL_RUNS = "subscription { exportRuns { id status } }"
ONE_RUN = "subscription($id: ID!) { exportRun(id: $id) { id status } }"


@dataclass
class Server:
    services: Services
    base: str

    @property
    def ws_url(self) -> str:
        return self.base.replace("http://", "ws://") + "/graphql"

    async def gauge(self) -> float:
        async with httpx.AsyncClient() as http:
            response = await http.get(f"{self.base}/metrics")
        response.raise_for_status()
        for line in response.text.splitlines():
            if line.startswith(f"{GAUGE} "):
                return float(line.split()[1])
        raise AssertionError(f"{GAUGE} is missing from /metrics")

    async def gauge_becomes(self, value: float) -> None:
        """Wait until the gauge reads ``value`` (the server notices a close asynchronously)."""

        async def poll() -> None:
            while await self.gauge() != value:
                await asyncio.sleep(0.05)

        try:
            await asyncio.wait_for(poll(), 10)
        except TimeoutError:
            raise AssertionError(f"{GAUGE} stayed {await self.gauge()}, expected {value}") from None


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    settings = make_settings(f"sqlite:///{tmp_path / 'gauge.db'}")
    async with (
        open_services(settings, load_entry_points=False) as services,
        serving(services) as port,
    ):
        yield Server(services, f"http://127.0.0.1:{port}")


async def open_subscription(
    server: Server, query: str, variables: dict[str, Any] | None = None
) -> ClientConnection:
    ws = await connect(server.ws_url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
    token = mint_token(server.services.settings, "watcher", [Role.VIEWER])
    await ws.send(
        json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
    )
    assert json.loads(await receive(ws))["type"] == "connection_ack"
    payload: dict[str, Any] = {"query": query, "variables": variables or {}}
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
    return ws


async def receive(ws: ClientConnection) -> str:
    return str(await asyncio.wait_for(ws.recv(), 10))


async def queued_run(services: Services) -> ExportRun:
    now = utcnow()
    # A detached export is enough: the run is only watched, never carried.
    export = Export(
        id=new_id(),
        display_name="Watched",
        connection_id=None,
        destination_type="memory",
        settings={},
        field_mapping=[],
        segment_ids=[],
        schedule=ExportSchedule(),
        created_by="alice",
        created_at=now,
        updated_at=now,
    )
    await services.store.save_export(export)
    run = ExportRun(
        id=new_id(),
        export_id=export.id,
        status=ExportRunStatus.QUEUED,
        trigger=ExportRunTrigger.ON_DEMAND,
        requested_by="alice",
        queued_at=utcnow(),
    )
    await services.store.insert_run(run)
    return run


async def test_the_gauge_counts_an_open_subscription_until_the_client_completes_it(
    server: Server,
) -> None:
    assert await server.gauge() == 0

    ws = await open_subscription(server, ALL_RUNS)
    await server.gauge_becomes(1)
    second = await open_subscription(server, ALL_RUNS)
    await server.gauge_becomes(2)

    await ws.send(json.dumps({"id": "1", "type": "complete"}))
    await server.gauge_becomes(1)
    await second.send(json.dumps({"id": "1", "type": "complete"}))
    await server.gauge_becomes(0)
    await ws.close()
    await second.close()


async def test_the_gauge_goes_down_when_the_client_disconnects_without_completing(
    server: Server,
) -> None:
    ws = await open_subscription(server, ALL_RUNS)
    await server.gauge_becomes(1)

    await ws.close()

    await server.gauge_becomes(0)


async def test_the_gauge_goes_down_when_a_run_subscription_ends_with_its_run(
    server: Server,
) -> None:
    run = await queued_run(server.services)
    ws = await open_subscription(server, ONE_RUN, {"id": to_global_id("ExportRun", run.id)})
    first = json.loads(await receive(ws))
    assert first["payload"]["data"]["exportRun"]["status"] == "QUEUED"
    assert await server.gauge() == 1

    cancelled = await server.services.store.request_run_cancel(run.id)
    assert cancelled is not None
    assert cancelled.status is ExportRunStatus.CANCELLED
    await server.services.events.publish(cancelled)
    kinds: list[str] = []
    while not kinds or kinds[-1] != "complete":
        kinds.append(json.loads(await receive(ws))["type"])

    assert kinds[-2:] == ["next", "complete"]
    await server.gauge_becomes(0)
    await ws.close()
