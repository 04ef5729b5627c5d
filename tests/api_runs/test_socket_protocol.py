"""The websocket protocol segport serves with (service/api/socket_protocol.py, issue 14).

Its receive queue on its own, then real uvicorn servers and real graphql-transport-ws
sockets: what a socket keeps once it is open, and what an idle one costs against
uvicorn's own protocol.
"""

from __future__ import annotations

import asyncio
import gc
import json
import tracemalloc
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.routing import WebSocketRoute
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from service.access.auth import mint_token
from service.api.socket_protocol import LeanWebSocketProtocol, ReceiveQueue
from service.api.websocket import TokenBoundTransportWSHandler
from service.app import SegportGraphQL, create_app
from service.core import Services, open_services
from service.domain import Role
from tests.support.served import port_of, serving_app
from tests.support.settings import make_settings

# -- the receive queue ------------------------------------------------------------------


async def test_the_queue_gives_items_in_the_order_they_were_put() -> None:
    queue = ReceiveQueue()
    assert queue.empty()
    for item in ("connect", "receive", "disconnect"):
        queue.put_nowait({"type": item})
    assert not queue.empty()
    assert [(await queue.get())["type"] for _ in range(3)] == ["connect", "receive", "disconnect"]
    assert queue.empty()


async def test_a_get_waits_for_the_next_put() -> None:
    queue = ReceiveQueue()
    getting = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not getting.done()
    queue.put_nowait("late")
    assert await asyncio.wait_for(getting, 1) == "late"


async def test_a_cancelled_get_takes_nothing() -> None:
    queue = ReceiveQueue()
    cancelled = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait("kept")  # wakes the waiter, which is cancelled before it runs
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert not queue.empty()
    assert await asyncio.wait_for(queue.get(), 1) == "kept"


async def test_a_wake_up_passes_on_when_its_get_was_cancelled() -> None:
    queue = ReceiveQueue()
    first = asyncio.create_task(queue.get())
    second = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait("only")
    first.cancel()
    assert await asyncio.wait_for(second, 1) == "only"
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_two_waiting_gets_each_get_one_item() -> None:
    queue = ReceiveQueue()
    gets = [asyncio.create_task(queue.get()) for _ in range(2)]
    await asyncio.sleep(0)
    queue.put_nowait("a")
    queue.put_nowait("b")
    assert sorted(await asyncio.wait_for(asyncio.gather(*gets), 1)) == ["a", "b"]
    assert queue.empty()


# -- served sockets -----------------------------------------------------------------------


@asynccontextmanager
async def served(
    services: Services, ws: str | None = None, init_wait: timedelta | None = None
) -> AsyncIterator[uvicorn.Server]:
    """``services``' app behind uvicorn as segport serves it (or with uvicorn's ``ws``;
    ``init_wait``: how long a socket may wait before its ``connection_init``)."""
    app = create_app(services)
    if init_wait is not None:
        [view] = [route.app for route in app.routes if isinstance(route, WebSocketRoute)]
        assert isinstance(view, SegportGraphQL)
        view.connection_init_wait_timeout = init_wait
    async with serving_app(app, ws=ws) as server:
        yield server


def ws_url(server: uvicorn.Server) -> str:
    return f"ws://127.0.0.1:{port_of(server)}/graphql"


async def open_socket(stack: AsyncExitStack, url: str, token: str) -> ClientConnection:
    """A graphql-transport-ws socket, acknowledged."""
    ws = await stack.enter_async_context(
        connect(url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
    )
    init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
    await ws.send(json.dumps(init))
    ack: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert ack["type"] == "connection_ack", ack
    return ws


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    settings = make_settings(f"sqlite:///{tmp_path / 'sockets.db'}")
    async with open_services(settings, load_entry_points=False) as opened:
        yield opened


async def test_an_open_socket_keeps_no_handshake_and_still_talks(services: Services) -> None:
    token = mint_token(services.settings, "viewer", [Role.VIEWER])
    async with served(services) as server, AsyncExitStack() as stack:
        ws = await open_socket(stack, ws_url(server), token)
        # The client offered permessage-deflate; segport serves without it.
        assert ws.request is not None
        assert ws.response is not None
        assert "permessage-deflate" in ws.request.headers["Sec-WebSocket-Extensions"]
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        [protocol] = server.server_state.connections
        assert isinstance(protocol, LeanWebSocketProtocol)
        assert protocol.request is None
        assert protocol.response is None
        assert isinstance(protocol.queue, ReceiveQueue)
        # Messages still flow both ways after the handshake was dropped.
        query = "{ exports(first: 1) { totalCount } }"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
        answer = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert answer["type"] == "next", answer
        assert answer["payload"] == {"data": {"exports": {"totalCount": 0}}}
        assert json.loads(await asyncio.wait_for(ws.recv(), 10)) == {"id": "1", "type": "complete"}
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10)) == {"type": "pong"}


def open_handlers() -> list[TokenBoundTransportWSHandler]:
    """The socket handlers alive (``type``, not ``isinstance``: a dead weak proxy among the
    objects would raise)."""
    gc.collect()
    return [o for o in gc.get_objects() if type(o) is TokenBoundTransportWSHandler]


async def test_an_acknowledged_socket_keeps_no_finished_wait_for_its_init(
    services: Services,
) -> None:
    token = mint_token(services.settings, "viewer", [Role.VIEWER])
    async with served(services) as server, AsyncExitStack() as stack:
        await open_socket(stack, ws_url(server), token)
        await asyncio.sleep(0.05)  # the cancelled wait finishes
        [handler] = open_handlers()
        assert handler.connection_acknowledged
        assert handler.connection_init_timeout_task is None


async def test_a_socket_that_never_sends_its_init_is_still_closed_with_4408(
    services: Services,
) -> None:
    async with (
        served(services, init_wait=timedelta(milliseconds=200)) as server,
        connect(ws_url(server), subprotocols=["graphql-transport-ws"]) as ws,  # type: ignore[list-item]
    ):
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
        assert ws.close_code == 4408
        assert ws.close_reason == "Connection initialisation timeout"


IDLE_SOCKETS = 20
SAVED_PER_SOCKET = 2048
"""Bytes an idle socket holds less than with uvicorn's own protocol, at least (about
3 KiB measured: the handshake's request and response, and the empty asyncio.Queue)."""


async def test_an_idle_socket_holds_less_than_with_uvicorns_own_protocol(
    services: Services,
) -> None:
    token = mint_token(services.settings, "viewer", [Role.VIEWER])

    async def held_per_socket(ws: str | None) -> float:
        async with served(services, ws) as server, AsyncExitStack() as stack:
            url = ws_url(server)
            await open_socket(stack, url, token)  # what the first socket makes once
            gc.collect()
            before, _ = tracemalloc.get_traced_memory()
            for _ in range(IDLE_SOCKETS):
                await open_socket(stack, url, token)
            await asyncio.sleep(0.1)
            gc.collect()
            after, _ = tracemalloc.get_traced_memory()
            return (after - before) / IDLE_SOCKETS

    tracemalloc.start()
    try:
        theirs = await held_per_socket("websockets-sansio")
        ours = await held_per_socket(None)
    finally:
        tracemalloc.stop()
    assert theirs - ours >= SAVED_PER_SOCKET, (theirs, ours)
