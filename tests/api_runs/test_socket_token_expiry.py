"""A websocket lives no longer than its token (issue 10, item 4).

A real uvicorn server, a real graphql-transport-ws socket, tokens that expire
two seconds after they are minted: the server closes the socket with
``4403: Forbidden`` when the token expires, ending the subscriptions on it,
and refuses an operation sent after the expiry.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import jwt
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from service.api.ids import to_global_id
from service.api.websocket import TOKEN_EXPIRED_CLOSE_CODE, TokenBoundTransportWSHandler
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
from tests.api_runs.live_server import (
    RECEIVE_TIMEOUT_SECONDS,
    LiveServer,
    live_server,
    receive,
    subscribe,
)
from tests.support.settings import make_settings

SHORT_LIVED = timedelta(seconds=2)
ONE_RUN = "subscription($id: ID!) { exportRun(id: $id) { id status } }"
NEW_SEGMENT = 'mutation { upsertSegment(input: {name: "Late"}) { segment { id } } }'


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[LiveServer]:
    async with live_server(make_settings(f"sqlite:///{tmp_path / 'expiry.db'}")) as running:
        yield running


async def queued_run(server: LiveServer) -> ExportRun:
    """A run that stays QUEUED (its export is detached: nothing carries it)."""
    now = utcnow()
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
    await server.services.store.save_export(export)
    run = ExportRun(
        id=new_id(),
        export_id=export.id,
        status=ExportRunStatus.QUEUED,
        trigger=ExportRunTrigger.ON_DEMAND,
        requested_by="alice",
        queued_at=now,
    )
    await server.services.store.insert_run(run)
    return run


async def closed_code(ws: ClientConnection) -> int | None:
    """Read until the server closes the socket; the close code it sent."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), RECEIVE_TIMEOUT_SECONDS)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else None


def expiry_of(token: str) -> float:
    exp: float = jwt.decode(token, options={"verify_signature": False})["exp"]
    return exp


async def past(exp: float) -> None:
    """Return once the wall clock is past ``exp`` (a token's expiry)."""
    while time.time() <= exp:
        await asyncio.sleep(max(exp - time.time(), 0) + 0.05)


async def segment_names(server: LiveServer) -> list[str]:
    page = await server.services.store.list_segments(10)
    return [segment.name for segment in page.items]


async def test_a_running_subscription_is_closed_with_4403_when_the_token_expires(
    server: LiveServer,
) -> None:
    run = await queued_run(server)
    token = server.token(Role.VIEWER, ttl=SHORT_LIVED)

    async with server.socket(token) as ws:
        await subscribe(ws, "1", ONE_RUN, {"id": to_global_id("ExportRun", run.id)})
        first = await receive(ws)
        code = await closed_code(ws)

    # The subscription was live (the run as it is now) until the token expired.
    assert first["type"] == "next", first
    assert first["payload"]["data"]["exportRun"]["status"] == "QUEUED"
    assert code == TOKEN_EXPIRED_CLOSE_CODE == 4403
    assert time.time() >= expiry_of(token)


async def test_a_mutation_sent_after_the_token_expired_is_refused(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without the closing timer, the socket stays open past the expiry: what arrives
    # then must be refused by the check every operation gets.
    async def never_close(self: TokenBoundTransportWSHandler, expires_at: datetime) -> None:
        return None

    monkeypatch.setattr(TokenBoundTransportWSHandler, "close_when_expired", never_close)
    token = server.token(Role.ADMIN, ttl=SHORT_LIVED)

    async with server.socket(token) as ws:
        await past(expiry_of(token))
        await subscribe(ws, "1", NEW_SEGMENT)
        code = await closed_code(ws)

    assert code == 4403
    assert await segment_names(server) == []


async def test_a_mutation_before_the_expiry_runs_and_the_socket_then_closes(
    server: LiveServer,
) -> None:
    token = server.token(Role.ADMIN, ttl=SHORT_LIVED)

    async with server.socket(token) as ws:
        await subscribe(ws, "1", NEW_SEGMENT)
        answer = await receive(ws)
        code = await closed_code(ws)

    assert answer["type"] == "next", answer
    assert answer["payload"]["data"]["upsertSegment"]["segment"]["id"]
    assert await segment_names(server) == ["Late"]
    assert code == 4403
