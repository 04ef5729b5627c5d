"""``segport run EXPORT_ID [--follow]``: a GraphQL client that queues a run and watches it.

It talks to a running segport like any other client: ``runExport`` over HTTP
(httpx), then the ``exportRun`` subscription over a websocket speaking
``graphql-transport-ws``, drawing a progress bar until the run ends. The exit
code is 0 only when the run succeeded (or, without ``--follow``, was queued).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

RUN_EXPORT = """
mutation RunExport($exportId: ID!) {
  runExport(input: {exportId: $exportId}) {
    exportRun { id status }
    userErrors { field message code }
  }
}
"""

FOLLOW_RUN = """
subscription FollowRun($id: ID!) {
  exportRun(id: $id) {
    id status progress message
    counts { profilesTotal profilesRead contactsSent skippedInvalid skippedDuplicate
             acceptedByDestination rejectedByDestination cannotAddToList }
  }
}
"""

EXIT_OK = 0
EXIT_RUN_DID_NOT_SUCCEED = 1
EXIT_REFUSED = 2


class ClientError(Exception):
    """The server refused or could not be reached; the message says what to do."""


def _ws_url(url: str) -> str:
    if url.startswith("https://"):
        return "wss://" + url.removeprefix("https://")
    if url.startswith("http://"):
        return "ws://" + url.removeprefix("http://")
    return url


async def request_run(url: str, token: str, export_id: str) -> dict[str, Any]:
    """Queue a run; returns ``{id, status}`` or raises :class:`ClientError`."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=30.0) as http:
        try:
            response = await http.post(
                url,
                json={"query": RUN_EXPORT, "variables": {"exportId": export_id}},
                headers=headers,
            )
        except httpx.HTTPError as exc:
            raise ClientError(f"cannot reach {url}: {type(exc).__name__}") from exc
    try:
        body = response.json()
    except ValueError as exc:
        raise ClientError(f"{url} answered HTTP {response.status_code}, not GraphQL") from exc
    if body.get("errors"):
        raise ClientError("; ".join(str(e.get("message")) for e in body["errors"]))
    payload = body["data"]["runExport"]
    if payload["userErrors"]:
        raise ClientError("; ".join(f"{e['message']} ({e['code']})" for e in payload["userErrors"]))
    run: dict[str, Any] = payload["exportRun"]
    return run


async def follow_run(url: str, token: str, run_id: str) -> AsyncIterator[dict[str, Any]]:
    """The run's states from the ``exportRun`` subscription, until it completes."""
    # websockets is not a declared dependency of segport (uvicorn[standard] brings it):
    # imported only when --follow needs it.
    from websockets.exceptions import ConnectionClosed, WebSocketException

    try:
        async for state in _subscribe(url, token, run_id):
            yield state
    except ConnectionClosed as exc:
        reason = exc.rcvd.reason if exc.rcvd else "no reason given"
        code = exc.rcvd.code if exc.rcvd else "none"
        raise ClientError(f"the server closed the subscription ({code}: {reason})") from exc
    except (WebSocketException, OSError) as exc:
        raise ClientError(f"cannot subscribe at {_ws_url(url)}: {type(exc).__name__}") from exc


async def _subscribe(url: str, token: str, run_id: str) -> AsyncIterator[dict[str, Any]]:
    # Imported when used, like the exceptions in follow_run (not a declared dependency).
    from websockets.asyncio.client import connect

    async with connect(_ws_url(url), subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        )
        ack = json.loads(await ws.recv())
        if ack.get("type") != "connection_ack":
            raise ClientError(f"the server refused the subscription: {ack}")
        await ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": FOLLOW_RUN, "variables": {"id": run_id}},
                }
            )
        )
        async for raw in ws:
            message = json.loads(raw)
            kind = message.get("type")
            if kind == "ping":
                await ws.send(json.dumps({"type": "pong"}))
            elif kind == "next":
                payload = message["payload"]
                if payload.get("errors"):
                    raise ClientError("; ".join(str(e.get("message")) for e in payload["errors"]))
                yield payload["data"]["exportRun"]
            elif kind == "error":
                raise ClientError("; ".join(str(e.get("message")) for e in message["payload"]))
            elif kind == "complete":
                return


async def _run(url: str, token: str, export_id: str, follow: bool, console: Console) -> int:
    try:
        run = await request_run(url, token, export_id)
    except ClientError as exc:
        console.print(f"[red]Run refused:[/red] {exc}")
        return EXIT_REFUSED
    console.print(f"Run {run['id']} {run['status']}")
    if not follow:
        return EXIT_OK
    last: dict[str, Any] = run
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=console, transient=False) as progress:
            task = progress.add_task(str(run["status"]), total=1.0, detail="")
            async for state in follow_run(url, token, run["id"]):
                last = state
                counts = state["counts"]
                progress.update(
                    task,
                    completed=state["progress"],
                    description=state["status"],
                    detail=f"{counts['contactsSent']} sent of {counts['profilesTotal']}",
                )
    except ClientError as exc:
        console.print(f"[red]Lost the run:[/red] {exc}")
        return EXIT_RUN_DID_NOT_SUCCEED
    status = last.get("status")
    counts = last.get("counts") or {}
    summary = ", ".join(f"{name} {value}" for name, value in counts.items())
    if status == "SUCCEEDED":
        console.print(f"[green]SUCCEEDED[/green] {summary}")
        return EXIT_OK
    console.print(f"[red]{status}[/red] {last.get('message') or ''} {summary}".rstrip())
    return EXIT_RUN_DID_NOT_SUCCEED


def run_command(url: str, token: str, export_id: str, follow: bool) -> int:
    """``segport run``: the process exit code (0 only when the run succeeded or was queued)."""
    return asyncio.run(_run(url, token, export_id, follow, Console()))
