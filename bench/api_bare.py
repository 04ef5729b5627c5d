"""The control of the API load benchmark: a bare strawberry app answering from memory.

It serves the same three queries (and the ``exportRuns`` subscription) with
the same field names and answers as segport, built from segport's own answers
(passed as a JSON file), with no store, no auth, no extensions: what
strawberry on uvicorn costs by itself. Started by ``bench/api_load.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import strawberry
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.routing import Route, WebSocketRoute
from strawberry.asgi import GraphQL

J = dict[str, Any]


@strawberry.interface
class Node:
    id: strawberry.ID


@strawberry.type
class Segment:
    id: strawberry.ID
    name: str
    member_count: int


@strawberry.type
class Counts:
    profiles_total: int | None = None
    contacts_sent: int | None = None
    accepted_by_destination: int | None = None


@strawberry.type
class Schedule:
    mode: str


@strawberry.type
class DestinationType:
    key: str
    display_name: str
    installed: bool


@strawberry.type
class Connection:
    id: strawberry.ID
    display_name: str
    ready: bool


@strawberry.type
class Export:
    id: strawberry.ID
    display_name: str
    attached: bool | None = None
    created_at: str | None = None
    updated_at: str | None = None
    can_edit: bool | None = None
    schedule: Schedule | None = None
    destination_type: DestinationType | None = None
    connection: Connection | None = None
    segments: list[Segment] | None = None
    last_run: ExportRun | None = None


@strawberry.type
class ExportRun(Node):
    status: str
    trigger: str | None = None
    queued_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    progress: float | None = None
    message: str | None = None
    counts: Counts | None = None
    export: Export | None = None


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class ExportEdge:
    cursor: str
    node: Export


@strawberry.type
class ExportConnection:
    total_count: int
    page_info: PageInfo
    edges: list[ExportEdge]


@strawberry.type
class RunEdge:
    node: ExportRun


@strawberry.type
class RunConnection:
    total_count: int
    page_info: PageInfo
    edges: list[RunEdge]


def _segment(d: J) -> Segment:
    return Segment(id=d["id"], name=d["name"], member_count=d["memberCount"])


def _counts(d: J | None) -> Counts | None:
    if d is None:
        return None
    return Counts(
        profiles_total=d.get("profilesTotal"),
        contacts_sent=d.get("contactsSent"),
        accepted_by_destination=d.get("acceptedByDestination"),
    )


def _run(d: J | None) -> ExportRun | None:
    if d is None:
        return None
    return ExportRun(
        id=d["id"],
        status=d["status"],
        trigger=d.get("trigger"),
        queued_at=d.get("queuedAt"),
        started_at=d.get("startedAt"),
        finished_at=d.get("finishedAt"),
        progress=d.get("progress"),
        message=d.get("message"),
        counts=_counts(d.get("counts")),
        export=_export(d["export"]) if d.get("export") else None,
    )


def _export(d: J) -> Export:
    return Export(
        id=d["id"],
        display_name=d["displayName"],
        attached=d.get("attached"),
        created_at=d.get("createdAt"),
        updated_at=d.get("updatedAt"),
        can_edit=d.get("canEdit"),
        schedule=Schedule(**d["schedule"]) if d.get("schedule") else None,
        destination_type=(
            DestinationType(
                key=d["destinationType"]["key"],
                display_name=d["destinationType"]["displayName"],
                installed=d["destinationType"]["installed"],
            )
            if d.get("destinationType")
            else None
        ),
        connection=(
            Connection(
                id=d["connection"]["id"],
                display_name=d["connection"]["displayName"],
                ready=d["connection"]["ready"],
            )
            if d.get("connection")
            else None
        ),
        segments=[_segment(s) for s in d["segments"]] if "segments" in d else None,
        last_run=_run(d.get("lastRun")),
    )


def _page_info(d: J) -> PageInfo:
    return PageInfo(has_next_page=d["hasNextPage"], end_cursor=d["endCursor"])


def make_app(answers_file: Path, redis_url: str | None) -> Starlette:
    answers = json.loads(answers_file.read_text())
    exports_data = answers["exports_page"]["data"]["exports"]
    runs_data = answers["runs_page"]["data"]["exportRuns"]
    node_data = answers["run_node"]["data"]["node"]
    node = _run(node_data)
    channel = answers.get("channel", "segport:runs")
    listeners: set[asyncio.Queue[J]] = set()

    @strawberry.type
    class Query:
        @strawberry.field
        def exports(self, first: int | None = None) -> ExportConnection:
            # Built per request, like a resolver turning records into objects.
            return ExportConnection(
                total_count=exports_data["totalCount"],
                page_info=_page_info(exports_data["pageInfo"]),
                edges=[
                    ExportEdge(cursor=e["cursor"], node=_export(e["node"]))
                    for e in exports_data["edges"]
                ],
            )

        @strawberry.field
        def export_runs(self, first: int | None = None) -> RunConnection:
            return RunConnection(
                total_count=runs_data["totalCount"],
                page_info=_page_info(runs_data["pageInfo"]),
                edges=[RunEdge(node=r) for e in runs_data["edges"] if (r := _run(e["node"]))],
            )

        @strawberry.field
        def node(self, id: strawberry.ID) -> Node | None:
            return node if node is not None and node.id == id else None

    @strawberry.type
    class Subscription:
        @strawberry.subscription
        async def export_runs(self) -> AsyncGenerator[ExportRun, None]:
            queue: asyncio.Queue[J] = asyncio.Queue()
            listeners.add(queue)
            try:
                while True:
                    raw = await queue.get()
                    yield ExportRun(
                        id=raw["id"],
                        status=raw["status"],
                        progress=raw["progress"],
                        counts=Counts(contacts_sent=raw["counts"]["contacts_sent"]),
                    )
            finally:
                listeners.discard(queue)

    schema = strawberry.Schema(query=Query, subscription=Subscription, types=[ExportRun])
    graphql_app: GraphQL[None, None] = GraphQL(schema)

    async def listen() -> None:
        if redis_url is None:
            return
        redis = Redis.from_url(redis_url)
        pubsub = redis.pubsub()
        await pubsub.subscribe(channel)
        async for message in pubsub.listen():
            if message["type"] != "message":
                continue
            raw = orjson.loads(message["data"])
            for queue in list(listeners):
                queue.put_nowait(raw)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(listen())
        yield
        task.cancel()

    return Starlette(
        routes=[
            Route("/graphql", graphql_app, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql_app),
        ],
        lifespan=lifespan,
    )
