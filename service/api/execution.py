"""The execution context of every operation: no reference cycle, no memo that grows with a
subscription's events, and subscription events executed once for subscribers alike.

- graphql-core (3.3) gives each execution context ``async_helpers``, a tuple of
  two of its own bound methods, so every operation's context (and all it holds:
  the request context, the document's collected fields, the resolvers' results)
  was only freed by the cyclic garbage collector. Here the helpers reach the
  context through a weak reference.
- graphql-core memoizes collected subfields on the subscription's executor and
  shares the memo with the copy made for each event; it is keyed by the identity
  of per-event lists, so it grew by every event for as long as the subscription
  lived. Each event's copy gets a memo of its own here.
- A subscription event whose root object is shared
  (:meth:`~service.api.subscription_sharing.SharedSubscriptionWork.event_node`)
  is executed once per document, variables and visibility of the caller, and the
  result reused by the other subscribers.

(The first two are worth reporting to graphql-core: the helpers need the context
only while it executes, and the per-event copies should not share the memo.)
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Awaitable, Sequence
from typing import Any, cast

from graphql import ExecutionResult, OperationType
from graphql.pyutils import RefMap
from graphql.pyutils.gather_with_cancel import gather_with_cancel
from graphql.type import GraphQLResolveInfoHelpers
from starlette.websockets import WebSocket
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from service.access.permissions import visibility_key
from service.api.context import RequestContext


def _gather(values: Sequence[Awaitable[Any]]) -> Awaitable[list[Any]]:
    return gather_with_cancel(*values)


def _variables_key(values: Any) -> str:
    coerced = getattr(values, "coerced", values)
    return json.dumps(coerced, sort_keys=True, default=repr)


class AcyclicExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """strawberry's execution context, as the module says."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        executor = weakref.ref(self)

        def track(values: Sequence[Any]) -> None:
            alive = executor()
            if alive is not None:
                alive.track_async_work(values)

        self.async_helpers = GraphQLResolveInfoHelpers(gather=_gather, track=track)

    def build_per_event_executor(self, payload: Any) -> Any:
        executor = super().build_per_event_executor(payload)
        executor._relevant_sub_fields = {}
        executor._stream_usages = RefMap()
        return executor

    def execute_operation(self, serially: bool | None = None) -> Any:
        context = self.context_value
        if isinstance(context, RequestContext) and isinstance(context.request, WebSocket):
            # Each operation and each event over a websocket reads afresh.
            context = self.context_value = context.for_operation()
        if (
            self.operation.operation is not OperationType.SUBSCRIPTION
            or not isinstance(context, RequestContext)
            or not context.parts.shared_subscriptions.is_shared_root(self.root_value)
        ):
            return super().execute_operation(serially)
        key = (
            id(self.operation),
            id(self.root_value),
            _variables_key(self.variable_values),
            visibility_key(context.principal),
        )

        def run() -> Awaitable[ExecutionResult] | ExecutionResult:
            outcome = StrawberryGraphQLCoreExecutionContext.execute_operation(self, serially)
            return cast("Awaitable[ExecutionResult] | ExecutionResult", outcome)

        return context.parts.shared_subscriptions.execute(
            key, (self.operation, self.root_value), run
        )
