"""The GraphQL schema, assembled from one module per area.

Each area module may define ``Query``, ``Mutation`` and ``Subscription``
classes; they are merged into the root types. Adding an area (e.g. running
exports in ``service.api.runs``) is one entry in the import and in ``AREAS``.

Every root field gets, here, what no resolver writes itself: the role check
its entry in :data:`service.api.permissions.ROOT_FIELD_ACTIONS` declares (a
root field without one fails the build), and, for mutations, the answer of a
:class:`~service.api.errors.UserInputError` as the payload's ``userErrors``.
"""

from __future__ import annotations

from copy import copy
from types import ModuleType
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.name_converter import NameConverter
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext
from strawberry.types.base import get_object_definition
from strawberry.types.field import StrawberryField

from service.api import (
    connections,
    destination_pauses,
    exports,
    pickers,
    preview,
    root,
    run_history,
    runs,
    schedule,
    segments,
)
from service.api.destination_answers import OperationMemo
from service.api.document_cache import DocumentCache, DocumentMemory
from service.api.errors import UserErrorsPayload
from service.api.execution import AcyclicExecutionContext
from service.api.execution_gate import ExecutionGate, ExecutionTurns
from service.api.extensions import Authentication, MaskUnexpectedErrors, log_unexpected
from service.api.input_checks import RefuseLoneSurrogates
from service.api.metrics import OperationMetrics
from service.api.nodes import Connection, Export, ExportRun, RefreshSchedule, Segment
from service.api.operation_limits import OperationLimits, limiting_extensions
from service.api.permissions import ROOT_FIELD_ACTIONS, RoleGuard
from service.settings import Settings

AREAS: tuple[ModuleType, ...] = (
    root,
    segments,
    connections,
    exports,
    pickers,
    run_history,
    runs,
    preview,
    schedule,
    destination_pauses,
)


ROOTS = ("Query", "Mutation", "Subscription")


class UndeclaredRootField(Exception):
    """A root field has no entry in ROOT_FIELD_ACTIONS, or an entry names no root field."""


def _root(name: str, names: NameConverter) -> type | None:
    parts = tuple(getattr(area, name) for area in AREAS if hasattr(area, name))
    if not parts:
        return None
    merged = merge_types(name, parts)
    definition = get_object_definition(merged, strict=True)
    # Copies: the areas' own fields stay as they are, however many schemas are built.
    definition.fields = [_guarded(name, copy(field), names) for field in definition.fields]
    return merged


def _guarded(root: str, field: StrawberryField, names: NameConverter) -> StrawberryField:
    key = f"{root}.{names.get_graphql_name(field)}"
    if key not in ROOT_FIELD_ACTIONS:
        raise UndeclaredRootField(
            f"root field {key} needs an entry in service.api.permissions.ROOT_FIELD_ACTIONS"
        )
    if root == "Mutation":
        # Inside UserErrorsPayload, whose userErrors answer what it refuses.
        field.extensions.append(RefuseLoneSurrogates())
        field.extensions.append(UserErrorsPayload())
    # Last is outermost: the role is checked before anything else runs.
    field.extensions.append(RoleGuard(ROOT_FIELD_ACTIONS[key], stream=field.is_subscription))
    return field


def _check_nothing_stale(roots: dict[str, type | None], names: NameConverter) -> None:
    """Every entry of ROOT_FIELD_ACTIONS names a root field (none is left from a removed one)."""
    present = {
        f"{name}.{names.get_graphql_name(field)}"
        for name, root in roots.items()
        if root is not None
        for field in get_object_definition(root, strict=True).fields
    }
    stale = sorted(set(ROOT_FIELD_ACTIONS) - present)
    if stale:
        raise UndeclaredRootField(f"ROOT_FIELD_ACTIONS names no root field {', '.join(stale)}")


class SegportSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Expected errors are the client's business; only bugs and outages are logged,
        # with their traceback (the client sees them masked).
        log_unexpected(errors, execution_context.context if execution_context else None)


def create_schema(limits: OperationLimits | None = None) -> strawberry.Schema:
    """The schema, bounding each operation by ``limits`` (the settings' defaults when None)."""
    if limits is None:
        limits = OperationLimits.of(Settings.model_construct())
    config = StrawberryConfig()
    roots = {name: _root(name, config.name_converter) for name in ROOTS}
    _check_nothing_stale(roots, config.name_converter)
    query = roots["Query"]
    assert query is not None
    documents = DocumentMemory()
    gate = ExecutionGate()
    extensions: list[Any] = [
        # First, so it times the whole operation and sees its final outcome.
        OperationMetrics,
        # Before the limits' rules are added: an unauthenticated caller's document is
        # not validated at all (validation errors would describe the schema).
        Authentication,
        # After Authentication (nothing is skipped for a caller it refused), before the
        # limits (the cost rule is only made when validation is not skipped).
        lambda: DocumentCache(documents),
        *limiting_extensions(limits),
        OperationMemo,
        MaskUnexpectedErrors,
        # Last, so only execution itself waits for a turn (docs/performance.md).
        lambda: ExecutionTurns(gate),
    ]
    return SegportSchema(
        query=query,
        mutation=roots["Mutation"],
        subscription=roots["Subscription"],
        # Node implementations are reachable only through node(id:) otherwise.
        types=[Segment, Connection, Export, ExportRun, RefreshSchedule],
        extensions=extensions,
        config=config,
        execution_context_class=AcyclicExecutionContext,
    )


def export_sdl() -> str:
    """The schema as SDL, as committed in ``schema.graphql``."""
    return create_schema().as_str() + "\n"
