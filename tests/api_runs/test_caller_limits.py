"""Limits per caller (issue 10, item 8), over a real uvicorn server with small limits:

* a user holds at most ``SEGPORT_MAX_SUBSCRIPTIONS_PER_USER`` subscriptions, over
  every socket; the next ``subscribe`` gets an error message on the socket;
* a request head over ``SEGPORT_MAX_HEADER_BYTES`` answers 431 (and a websocket
  handshake is refused) before any token is decoded;
* a request body not sent in full within ``SEGPORT_REQUEST_BODY_TIMEOUT_SECONDS``
  answers 408 and the connection closes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from service.api.ids import to_global_id
from service.domain import Role
from tests.api_runs.live_server import (
    GRAPHQL_TRANSPORT_WS,
    LiveServer,
    live_server,
    receive,
    subscribe,
)
from tests.api_runs.test_socket_token_expiry import queued_run
from tests.support.settings import make_settings

MAX_SUBSCRIPTIONS = 2
MAX_HEADER_BYTES = 4096
BODY_TIMEOUT_SECONDS = 1.0
ONE_RUN = "subscription($id: ID!) { exportRun(id: $id) { id status } }"
VIEWER = "{ viewer { sub } }"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[LiveServer]:
    settings = make_settings(
        f"sqlite:///{tmp_path / 'limits.db'}",
        max_subscriptions_per_user=MAX_SUBSCRIPTIONS,
        max_header_bytes=MAX_HEADER_BYTES,
        request_body_timeout_seconds=BODY_TIMEOUT_SECONDS,
    )
    async with live_server(settings) as running:
        yield running


async def test_the_subscription_after_the_users_cap_is_refused_on_any_socket(
    server: LiveServer,
) -> None:
    run_id = to_global_id("ExportRun", (await queued_run(server)).id)
    variables = {"id": run_id}
    viewer = server.token(Role.VIEWER, sub="vera")

    async with server.socket(viewer) as first, server.socket(viewer) as second:
        await subscribe(first, "a", ONE_RUN, variables)
        await subscribe(second, "b", ONE_RUN, variables)
        # Each delivered the run: both hold one of vera's slots now.
        opened = [await receive(first), await receive(second)]
        await subscribe(second, "c", ONE_RUN, variables)
        refused = await receive(second)
        async with server.socket(server.token(Role.VIEWER, sub="otto")) as other:
            await subscribe(other, "d", ONE_RUN, variables)
            others = await receive(other)
        # Completing one frees its slot for the next.
        await first.send(json.dumps({"id": "a", "type": "complete"}))
        again = await _subscribe_until_served(second, variables)

    assert [m["type"] for m in opened] == ["next", "next"]
    assert refused["id"] == "c"
    errors = refused["payload"] if refused["type"] == "error" else refused["payload"]["errors"]
    assert [e["extensions"]["code"] for e in errors] == ["TOO_MANY_SUBSCRIPTIONS"]
    assert f"{MAX_SUBSCRIPTIONS} subscriptions open" in errors[0]["message"]
    assert others["type"] == "next", others
    assert again["type"] == "next", again


async def _subscribe_until_served(
    ws: ClientConnection, variables: dict[str, str]
) -> dict[str, Any]:
    """Subscribe until the server has noticed the completed one (it frees the slot soon after)."""
    for attempt in range(100):
        operation_id = f"retry-{attempt}"
        await subscribe(ws, operation_id, ONE_RUN, variables)
        message = await receive(ws)
        if message["type"] == "next":
            return message
        await asyncio.sleep(0.05)
    raise AssertionError("the completed subscription never freed its slot")


async def test_a_request_head_over_the_limit_answers_431_before_the_token_is_read(
    server: LiveServer,
) -> None:
    huge = "Bearer " + "x" * (8 * 1024 * 1024)
    async with httpx.AsyncClient(timeout=30) as http:
        refused = await http.post(
            server.url, json={"query": VIEWER}, headers={"Authorization": huge}
        )
        served = await http.post(
            server.url,
            json={"query": VIEWER},
            headers={"Authorization": f"Bearer {server.token(Role.VIEWER)}"},
        )

    assert refused.status_code == 431
    assert f"larger than {MAX_HEADER_BYTES} bytes" in refused.json()["error"]
    assert served.status_code == 200
    assert served.json() == {"data": {"viewer": {"sub": "alice"}}}


async def test_a_websocket_handshake_with_a_huge_head_is_refused(server: LiveServer) -> None:
    # Several lines, each shorter than the websocket server's own line limit.
    headers = {f"X-Padding-{n}": "x" * 3000 for n in range(3)}
    with pytest.raises(InvalidStatus) as refused:
        async with connect(
            server.ws_url, subprotocols=[GRAPHQL_TRANSPORT_WS], additional_headers=headers
        ):
            pass

    assert refused.value.response.status_code == 403


async def test_a_huge_token_in_connection_params_is_refused_without_decoding(
    server: LiveServer,
) -> None:
    init = {"type": "connection_init", "payload": {"Authorization": "Bearer " + "x" * 100_000}}
    async with connect(server.ws_url, subprotocols=[GRAPHQL_TRANSPORT_WS]) as ws:
        await ws.send(json.dumps(init))
        with pytest.raises(ConnectionClosed) as closed:
            await receive(ws)

    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4403


async def test_a_half_sent_body_answers_408_and_the_connection_closes(server: LiveServer) -> None:
    reader, writer = await asyncio.open_connection(server.host, server.port)
    head = (
        "POST /graphql HTTP/1.1\r\n"
        f"Host: {server.host}:{server.port}\r\n"
        "Content-Type: application/json\r\n"
        "Content-Length: 100\r\n\r\n"
    )
    writer.write(head.encode() + b'{"query": ')
    await writer.drain()
    try:
        answer = await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()

    status_line = answer.split(b"\r\n", 1)[0]
    assert status_line == b"HTTP/1.1 408 Request Timeout", answer
    assert b"request body not received within 1 seconds" in answer
    # read() returned: the server closed the connection after answering.


async def test_a_whole_body_sent_at_once_is_served(server: LiveServer) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        served = await http.post(
            server.url,
            json={"query": VIEWER},
            headers={"Authorization": f"Bearer {server.token(Role.ADMIN)}"},
        )

    assert served.status_code == 200, served.text
