"""The GraphQL schema, assembled from one module per area.

Each area module may define ``Query``, ``Mutation`` and ``Subscription``
classes; they are merged into the root types. Adding an area (e.g. running
exports in ``service.api.runs``) is one entry in the import and in ``AREAS``.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import QueryDepthLimiter
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from service.api import (
    connections,
    exports,
    pickers,
    root,
    run_history,
    runs,
    schedule,
    segments,
)
from service.api.extensions import Authentication, MaskUnexpectedErrors, log_unexpected
from service.api.metrics import OperationMetrics
from service.api.nodes import Connection, Export, ExportRun, RefreshSchedule, Segment

AREAS: tuple[ModuleType, ...] = (
    root,
    segments,
    connections,
    exports,
    pickers,
    run_history,
    runs,
    schedule,
)


def _root(name: str) -> type | None:
    parts = tuple(getattr(area, name) for area in AREAS if hasattr(area, name))
    return merge_types(name, parts) if parts else None


class SegportSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Expected errors are the client's business; only bugs and outages are logged,
        # with their traceback (the client sees them masked).
        log_unexpected(errors, execution_context.context if execution_context else None)


def create_schema(max_query_depth: int = 12) -> strawberry.Schema:
    query = _root("Query")
    assert query is not None
    extensions: list[Any] = [
        # First, so it times the whole operation and sees its final outcome.
        OperationMetrics,
        # A factory, so each operation gets a fresh extension instance.
        lambda: QueryDepthLimiter(max_depth=max_query_depth),
        Authentication,
        MaskUnexpectedErrors,
    ]
    return SegportSchema(
        query=query,
        mutation=_root("Mutation"),
        subscription=_root("Subscription"),
        # Node implementations are reachable only through node(id:) otherwise.
        types=[Segment, Connection, Export, ExportRun, RefreshSchedule],
        extensions=extensions,
    )


def export_sdl() -> str:
    """The schema as SDL, as committed in ``schema.graphql``."""
    return create_schema().as_str() + "\n"
