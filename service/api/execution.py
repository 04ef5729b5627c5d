"""The execution context of every operation, without the reference cycle graphql-core makes.

graphql-core (3.3) gives each execution context ``async_helpers``, a tuple of
two of its own bound methods, so every operation's context (and all it
holds: the request context, the document's collected fields, the resolvers'
results) is only freed by the cyclic garbage collector. Here the helpers
reach the context through a weak reference: the context is freed as soon as
the operation is done with it. (Worth reporting upstream: the helpers need
the context only for ``track``, and only while it executes.)
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Sequence
from typing import Any

from graphql.pyutils.gather_with_cancel import gather_with_cancel
from graphql.type import GraphQLResolveInfoHelpers
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext


def _gather(values: Sequence[Awaitable[Any]]) -> Awaitable[list[Any]]:
    return gather_with_cancel(*values)


class AcyclicExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """strawberry's execution context, its ``async_helpers`` holding it weakly."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        executor = weakref.ref(self)

        def track(values: Sequence[Any]) -> None:
            alive = executor()
            if alive is not None:
                alive.track_async_work(values)

        self.async_helpers = GraphQLResolveInfoHelpers(gather=_gather, track=track)
