"""The GraphQL side of the metrics: every operation counted by name and outcome, and timed.

It lives with the API so that :mod:`service.observability` stays free of
GraphQL (the worker records metrics without importing strawberry).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from graphql import OperationType
from strawberry.extensions import SchemaExtension

from service.observability.metrics import Metrics


def _operation_type(execution_context: Any) -> str:
    try:
        operation_type: OperationType = execution_context.operation_type
    except Exception:  # the document did not parse: there is no operation
        return "unknown"
    return str(operation_type.value)


class OperationMetrics(SchemaExtension):
    """Counts every GraphQL operation by name and outcome, and times it."""

    async def on_operation(self) -> AsyncIterator[None]:
        context = self.execution_context.context
        metrics: Metrics | None = getattr(getattr(context, "parts", None), "metrics", None)
        started = time.perf_counter()
        yield
        if metrics is None:
            return
        result = self.execution_context.result
        outcome = "error" if result is not None and result.errors else "ok"
        metrics.record_operation(
            self.execution_context.operation_name,
            _operation_type(self.execution_context),
            outcome,
            time.perf_counter() - started,
        )
