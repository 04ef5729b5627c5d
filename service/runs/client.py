"""``segport run EXPORT_ID [--follow]``: a GraphQL client that queues a run and watches it.

It talks to a running segport like any other client: ``runExport`` over HTTP
(httpx), then the ``exportRun`` subscription over a websocket speaking
``graphql-transport-ws``, drawing the run's phase, share done, counts and a
running clock until it ends (:mod:`service.runs.run_view` derives what to show),
then the outcome in words and a few of the records left out. The exit code is 0
only when the run succeeded (or, without ``--follow``, was queued).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

from service.runs.run_view import (
    RUN_ERRORS,
    PhaseTracker,
    detail,
    errors_hint,
    left_out,
    shown_fraction,
    summary,
)

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
             acceptedByDestination rejectedByDestination cannotAddToList fieldWarnings
             skippedUnchanged removedFromList removalsFailed }
  }
}
"""

PREVIEW_EXPORT = """
mutation PreviewExport($exportId: ID!) {
  previewExport(input: {exportId: $exportId}) {
    preview { toAdd toUpdate unchanged toRemove skippedInvalid skippedDuplicate fieldWarnings
              note sample { profileId contact } }
    userErrors { field message code }
  }
}
"""

PREVIEW_WORDS = (
    ("toAdd", "to add (new to the destination)"),
    ("toUpdate", "to update (changed since the destination confirmed them)"),
    ("unchanged", "unchanged (not sent)"),
    ("toRemove", "to remove from the list (left the segments)"),
    ("skippedInvalid", "to skip as invalid"),
    ("skippedDuplicate", "to skip as duplicates"),
    ("fieldWarnings", "field warnings"),
)

SHOWN_ERRORS = 5
"""Sampled errors printed after a run that left records out."""

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
    payload = await _mutate(url, token, RUN_EXPORT, "runExport", export_id)
    run: dict[str, Any] = payload["exportRun"]
    return run


async def request_preview(url: str, token: str, export_id: str) -> dict[str, Any]:
    """What a run would do now (``previewExport``), or raises :class:`ClientError`."""
    payload = await _mutate(url, token, PREVIEW_EXPORT, "previewExport", export_id, wait=600)
    preview: dict[str, Any] = payload["preview"]
    return preview


async def _mutate(
    url: str, token: str, query: str, name: str, export_id: str, wait: float = 30.0
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=wait) as http:
        try:
            response = await http.post(
                url,
                json={"query": query, "variables": {"exportId": export_id}},
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
    payload: dict[str, Any] = body["data"][name]
    if payload["userErrors"]:
        raise ClientError("; ".join(f"{e['message']} ({e['code']})" for e in payload["userErrors"]))
    return payload


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


async def run_errors(url: str, token: str, run_id: str, first: int) -> list[dict[str, Any]]:
    """The first ``first`` sampled errors of a run (empty when they cannot be read)."""
    async with httpx.AsyncClient(timeout=30.0) as http:
        try:
            response = await http.post(
                url,
                json={"query": RUN_ERRORS, "variables": {"id": run_id, "first": first}},
                headers={"Authorization": f"Bearer {token}"},
            )
            body = response.json()
        except (httpx.HTTPError, ValueError):
            return []
    node = (body.get("data") or {}).get("node") or {}
    errors: list[dict[str, Any]] = node.get("errors") or []
    return errors


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


class _Follower:
    """Draws one run as it goes: a live bar (phase, share done, counts, a running clock) and
    a line for each new phase or message, which also reads well when not on a terminal."""

    def __init__(self, console: Console, progress: Progress, task: TaskID) -> None:
        self.console = console
        self.progress = progress
        self.task = task
        self.phases = PhaseTracker()
        self.started = time.monotonic()
        self.said: tuple[str, str | None] | None = None

    def elapsed(self) -> str:
        return _clock(time.monotonic() - self.started)

    def show(self, run: dict[str, Any]) -> None:
        phase = self.phases.phase(run)
        fraction = shown_fraction(run)
        self.progress.update(
            self.task, completed=fraction, description=phase.name, detail=detail(run)
        )
        said = (phase.name, phase.why)
        if said != self.said:
            self.said = said
            self.progress.console.print(
                f"{self.elapsed()} {phase} ({fraction:.0%}; {detail(run)})",
                markup=False,
                highlight=False,
            )


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
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task(str(run["status"]).lower(), total=1.0, detail="")
            follower = _Follower(console, progress, task)
            async for state in follow_run(url, token, run["id"]):
                last = state
                follower.show(state)
    except ClientError as exc:
        console.print(f"[red]Lost the run:[/red] {exc}")
        return EXIT_RUN_DID_NOT_SUCCEED
    return await _conclude(url, token, last, follower.elapsed(), console)


async def _conclude(
    url: str, token: str, run: dict[str, Any], elapsed: str, console: Console
) -> int:
    """The outcome in words: status, message, counts, and the records left out."""
    status = str(run.get("status"))
    colour = "green" if status == "SUCCEEDED" else "red"
    console.print(f"[{colour}]{status}[/{colour}] after {elapsed}")
    if run.get("message"):
        console.print(f"  {run['message']}", markup=False, highlight=False)
    counts = run.get("counts") or {}
    for line in summary(counts):
        console.print(f"  {line}", markup=False, highlight=False)
    if left_out(counts) or counts.get("fieldWarnings"):
        errors = await run_errors(url, token, str(run["id"]), SHOWN_ERRORS)
        if errors:
            console.print("Some of the records or values left out (profile, field, code: reason):")
            for error in errors:
                console.print(
                    f"  {error.get('profileId') or '-'}  {error.get('field') or '-'}  "
                    f"{error.get('code')}: {error.get('message')}",
                    markup=False,
                    highlight=False,
                )
        # Unwrapped, so the query can be copied as it is.
        console.print(errors_hint(str(run["id"])), markup=False, highlight=False, soft_wrap=True)
    return EXIT_OK if status == "SUCCEEDED" else EXIT_RUN_DID_NOT_SUCCEED


def run_command(url: str, token: str, export_id: str, follow: bool) -> int:
    """``segport run``: the process exit code (0 only when the run succeeded or was queued)."""
    return asyncio.run(_run(url, token, export_id, follow, Console()))


def preview_command(url: str, token: str, export_id: str) -> int:
    """``segport run --preview``: print what a run would do; 0 unless it was refused."""
    return asyncio.run(_preview(url, token, export_id, Console()))


async def _preview(url: str, token: str, export_id: str, console: Console) -> int:
    try:
        preview = await request_preview(url, token, export_id)
    except ClientError as exc:
        console.print(f"[red]Preview refused:[/red] {exc}")
        return EXIT_REFUSED
    console.print("A run now would (nothing was sent):")
    if preview.get("note"):
        console.print(f"  {preview['note']}", markup=False, highlight=False)
    width = max(len(str(preview.get(name) or 0)) for name, _ in PREVIEW_WORDS)
    for name, words in PREVIEW_WORDS:
        console.print(f"  {preview.get(name) or 0:>{width}} {words}", markup=False, highlight=False)
    sample = preview.get("sample") or []
    if sample:
        console.print(f"The first {len(sample)} records it would send (profile: record):")
        for item in sample:
            record = json.dumps(item["contact"], ensure_ascii=False, sort_keys=True)
            console.print(f"  {item['profileId']}: {record}", markup=False, highlight=False)
    return EXIT_OK
