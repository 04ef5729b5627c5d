"""Subscribers of the same operation share one execution per event, within what each may see
(issue 14, item 4).

A real uvicorn server serves the app; callers with different roles (and two
contributors, whose ``sub`` decides what they may edit) watch the same run
with the same operation over real websockets. Each gets the answer its role
gives, and each event is executed once per group of callers who see the same
thing, not once per subscriber.
"""

from __future__ import annotations

import asyncio
import gc
import json
import weakref
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from service.access.auth import mint_token
from service.api.ids import to_global_id
from service.api.subscription_sharing import SharedSubscriptionWork
from service.api.subscription_slots import SubscriptionSlots
from service.app import create_app
from service.core import Services, open_services
from service.domain import (
    Connection,
    ConnectionUsableBy,
    Export,
    ExportRun,
    ExportRunStatus,
    Role,
)
from tests.support.records import make_connection, make_export, make_run
from tests.support.served import port_of, serving_app
from tests.support.settings import make_settings

WATCH = """
subscription Watch($id: ID!) {
  exportRun(id: $id) {
    id status progress
    export { displayName canEdit connection { displayName status } }
  }
}
"""


@dataclass
class Server:
    services: Services
    ws_url: str
    shared: SharedSubscriptionWork
    slots: SubscriptionSlots

    async def watcher(self, stack: AsyncExitStack, role: Role, sub: str, run_id: str) -> Watcher:
        ws = await stack.enter_async_context(
            connect(self.ws_url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
        )
        token = mint_token(self.services.settings, sub, [role])
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        )
        assert json.loads(await receive(ws))["type"] == "connection_ack"
        payload = {"query": WATCH, "variables": {"id": to_global_id("ExportRun", run_id)}}
        await ws.send(json.dumps({"id": "w", "type": "subscribe", "payload": payload}))
        watcher = Watcher(ws)
        # The run as it is now: the subscription listens to changes from here on.
        assert (await watcher.next())["status"] == "QUEUED"
        return watcher


@dataclass
class Watcher:
    ws: ClientConnection

    async def next(self) -> dict[str, Any]:
        message = json.loads(await receive(self.ws))
        assert message["type"] == "next", message
        assert "errors" not in message["payload"], message
        data: dict[str, Any] = message["payload"]["data"]["exportRun"]
        return data


async def receive(ws: ClientConnection) -> str:
    return str(await asyncio.wait_for(ws.recv(), 10))


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    settings = make_settings(f"sqlite:///{tmp_path / 'shared.db'}")
    async with open_services(settings, load_entry_points=False) as services:
        app = create_app(services)
        async with serving_app(app) as running:
            parts = app.state.api_parts
            yield Server(
                services,
                f"ws://127.0.0.1:{port_of(running)}/graphql",
                parts.shared_subscriptions,
                parts.subscription_slots,
            )


async def a_watched_run(
    server: Server, connection_name: str
) -> tuple[Connection, Export, ExportRun]:
    """An admins-only connection so named, its export "Weekly" and a queued run of it."""
    connection = make_connection(usable_by=ConnectionUsableBy.ADMINS, display_name=connection_name)
    await server.services.store.save_connection(connection)
    export = make_export(connection_id=connection.id, display_name="Weekly")
    await server.services.store.save_export(export)
    run = make_run(export.id)
    await server.services.store.insert_run(run)
    return connection, export, run


async def test_callers_with_different_roles_get_their_own_answers_from_shared_executions(
    server: Server,
) -> None:
    connection, export, run = await a_watched_run(server, "Admins only")

    async with AsyncExitStack() as stack:
        admins = [await server.watcher(stack, Role.ADMIN, f"admin-{i}", run.id) for i in range(3)]
        viewers = [
            await server.watcher(stack, Role.VIEWER, f"viewer-{i}", run.id) for i in range(2)
        ]
        executions, reused = server.shared.executions, server.shared.reused

        await server.services.events.publish(
            replace(run, status=ExportRunStatus.RUNNING, progress=0.5)
        )
        seen_by_admins = [await w.next() for w in admins]
        seen_by_viewers = [await w.next() for w in viewers]

    expected_run = {"id": to_global_id("ExportRun", run.id), "status": "RUNNING", "progress": 0.5}
    for seen in seen_by_admins + seen_by_viewers:
        assert {k: seen[k] for k in expected_run} == expected_run
    assert all(seen == seen_by_admins[0] for seen in seen_by_admins)
    assert seen_by_admins[0]["export"] == {
        "displayName": "Weekly",
        "canEdit": True,
        "connection": {"displayName": "Admins only", "status": "CONNECTED"},
    }
    assert all(seen == seen_by_viewers[0] for seen in seen_by_viewers)
    assert seen_by_viewers[0]["export"] == {
        "displayName": "Weekly",
        "canEdit": False,
        "connection": None,
    }
    # One execution for the admins, one for the viewers; the other three reused them.
    assert (server.shared.executions - executions, server.shared.reused - reused) == (2, 3)


async def test_contributors_share_nothing_where_their_sub_decides_what_they_may_do(
    server: Server,
) -> None:
    # A detached export: a contributor may edit it only when they made it.
    export = make_export(connection_id=None, created_by="carol", display_name="Carol's")
    await server.services.store.save_export(export)
    run = make_run(export.id)
    await server.services.store.insert_run(run)

    async with AsyncExitStack() as stack:
        carols = [await server.watcher(stack, Role.CONTRIBUTOR, "carol", run.id) for _ in range(2)]
        dave = await server.watcher(stack, Role.CONTRIBUTOR, "dave", run.id)
        executions, reused = server.shared.executions, server.shared.reused

        await server.services.events.publish(replace(run, status=ExportRunStatus.RUNNING))
        seen_by_carol = [await w.next() for w in carols]
        seen_by_dave = await dave.next()

    assert [seen["export"]["canEdit"] for seen in seen_by_carol] == [True, True]
    assert seen_by_dave["export"]["canEdit"] is False
    assert (server.shared.executions - executions, server.shared.reused - reused) == (2, 1)


async def test_each_event_reads_afresh_what_it_shows(server: Server) -> None:
    """A websocket keeps one context for all its operations: what one event read (the run's
    export, its connection) must not answer for the next one."""
    connection, export, run = await a_watched_run(server, "Before")

    async with AsyncExitStack() as stack:
        admin = await server.watcher(stack, Role.ADMIN, "admin", run.id)
        await server.services.events.publish(replace(run, status=ExportRunStatus.RUNNING))
        first = await admin.next()
        await server.services.store.save_export(replace(export, display_name="Daily"))
        await server.services.store.save_connection(replace(connection, display_name="After"))
        await server.services.events.publish(
            replace(run, status=ExportRunStatus.RUNNING, progress=0.5)
        )
        second = await admin.next()

    assert (first["export"]["displayName"], first["export"]["connection"]["displayName"]) == (
        "Weekly",
        "Before",
    )
    assert (second["export"]["displayName"], second["export"]["connection"]["displayName"]) == (
        "Daily",
        "After",
    )


def test_a_shared_message_is_the_text_strawberry_would_send() -> None:
    shared = SharedSubscriptionWork()
    payload: dict[str, Any] = {"data": {"exportRun": {"id": "RXhw", "name": 'Zoë "q"'}}}

    for operation_id in ("1", 'odd "id"'):
        text = shared.next_message_text(operation_id, payload)
        message = {"id": operation_id, "type": "next", "payload": payload}
        assert text == json.dumps(message, separators=(",", ":"))
    assert shared.next_message_text("1", {**payload, "errors": []}) is None


async def test_what_subscriptions_held_is_freed_once_they_close(server: Server) -> None:
    export = make_export(connection_id=None, display_name="Watched")
    await server.services.store.save_export(export)
    run = make_run(export.id)
    await server.services.store.insert_run(run)

    async def watch_and_leave(count: int, events: int) -> None:
        async with AsyncExitStack() as stack:
            watchers = [
                await server.watcher(stack, Role.VIEWER, f"viewer-{i}", run.id)
                for i in range(count)
            ]
            for step in range(events):
                await server.services.events.publish(
                    replace(run, status=ExportRunStatus.RUNNING, progress=step / events)
                )
                for watcher in watchers:
                    await watcher.next()
        await all_closed(server, [f"viewer-{i}" for i in range(count)])

    await watch_and_leave(3, 3)  # fills what is made once (caches, the events listener)
    gc.collect()
    before = tracked_objects()

    await watch_and_leave(30, 10)

    gc.collect()
    assert tracked_objects() - before <= LEFT_BEHIND


def tracked_objects() -> int:
    """Every object the collector tracks, those a streaming run froze included (a run of
    an earlier test ending meanwhile hands them back to the collector), but for dead weak
    references: the sqlite3 module keeps one for each cursor a connection made and prunes
    them only every 200 cursors, so their number follows how many reads the events made
    (each event reads afresh), within that bound."""
    dead = sum(1 for o in gc.get_objects() if type(o) is weakref.ReferenceType and o() is None)
    return len(gc.get_objects()) - dead + gc.get_freeze_count()


LEFT_BEHIND = 200
"""Objects that may stay after 30 subscriptions of 10 events closed (the shared work's
bounded memory of recent events); each subscription held hundreds while open."""


async def all_closed(server: Server, subs: list[str]) -> None:
    """Wait until the server released every slot of ``subs`` (it notices closes asynchronously)."""

    async def poll() -> None:
        while any(server.slots.open_for(sub) for sub in subs):
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), 10)
