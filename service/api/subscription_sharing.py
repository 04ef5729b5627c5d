"""Subscribers of the same operation share one execution and one message per event.

A dashboard of a thousand watchers of ``exportRuns`` would otherwise execute
each event a thousand times and serialize it a thousand times. Three pieces,
each keeping what every subscriber still gets its own:

- :meth:`SharedSubscriptionWork.event_node`: subscription resolvers turn an event
  into its root object once (keyed by the event's content), so every subscriber's
  per-event execution starts from the same object;
- :meth:`SharedSubscriptionWork.execute`: the per-event execution (see
  :class:`service.api.execution.AcyclicExecutionContext`) runs once per document,
  variables, root object and *visibility* (:func:`service.access.permissions.
  visibility_key`: callers whose roles, and where it matters ``sub``, give the same
  answers); the others wait for it and reuse its result. A result with errors is
  never shared: each subscriber then executes the event itself (its errors name
  its own request);
- :meth:`SharedSubscriptionWork.next_message_text`: a result's ``next`` payload is
  encoded once; each subscriber's message is its id around that text.

Each subscription still has its own start (authentication, role check, the
per-user slot, its own first answer), its own socket and its own end.
Everything here is bounded: entries are least-recently-used, a few hundred.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from graphql import ExecutionResult

from service.api.lru import Lru

T = TypeVar("T")

EVENTS_REMEMBERED = 64
"""Recent events whose root objects are kept for subscribers still executing them."""
RESULTS_REMEMBERED = 512
"""Recent shared executions (events times visibility groups) kept."""
MESSAGES_REMEMBERED = 64
"""Recent encoded payloads kept."""


class SharedSubscriptionWork:
    """What the subscriptions of one process share (one per process, on ApiParts)."""

    def __init__(self) -> None:
        self._nodes: Lru[bytes, object] = Lru(EVENTS_REMEMBERED)
        self._roots: dict[int, object] = {}
        """The root objects in ``_nodes`` by id: what a per-event execution may share."""
        self._results: Lru[tuple[Any, ...], _SharedResult] = Lru(RESULTS_REMEMBERED)
        self._messages: Lru[int, tuple[object, str]] = Lru(MESSAGES_REMEMBERED)
        self.executions = 0
        """Per-event executions run (shared or not), for tests and the benchmark."""
        self.reused = 0
        """Per-event results taken from another subscriber's execution."""

    # -- events -> root objects ---------------------------------------------------------

    def event_node(self, key: bytes, make: Callable[[], T]) -> T:
        """The root object of the event whose content is ``key``, made once."""
        known = self._nodes.get(key)
        if known is None:
            known = make()
            self._put_node(key, known)
        return known  # type: ignore[return-value]

    def _put_node(self, key: bytes, node: object) -> None:
        self._nodes.put(key, node)
        self._roots = {id(n): n for n in self._nodes.values()}

    def is_shared_root(self, value: object) -> bool:
        return self._roots.get(id(value)) is value

    # -- per-event execution ------------------------------------------------------------

    def execute(
        self,
        key: tuple[Any, ...],
        keep_alive: tuple[object, ...],
        run: Callable[[], Awaitable[ExecutionResult] | ExecutionResult],
    ) -> Awaitable[ExecutionResult] | ExecutionResult:
        """``run()``'s result, or the one of an execution of the same ``key`` (whose
        objects ``keep_alive`` holds, so the ids in ``key`` stay theirs)."""
        shared = self._results.get(key)
        if shared is not None:
            return self._reuse(shared, run)
        shared = _SharedResult(keep_alive)
        self._results.put(key, shared)
        self.executions += 1
        try:
            outcome = run()
        except BaseException:
            shared.settle(None)
            raise
        if isinstance(outcome, ExecutionResult):
            shared.settle(outcome)
            return outcome
        return self._settled_after(shared, outcome)

    async def _settled_after(
        self, shared: _SharedResult, outcome: Awaitable[ExecutionResult]
    ) -> ExecutionResult:
        try:
            result = await outcome
        except BaseException:
            shared.settle(None)
            raise
        shared.settle(result)
        return result

    async def _reuse(
        self,
        shared: _SharedResult,
        run: Callable[[], Awaitable[ExecutionResult] | ExecutionResult],
    ) -> ExecutionResult:
        result = await shared.wait()
        if result is not None:
            self.reused += 1
            return result
        # The shared execution failed or answered errors: this subscriber's own.
        self.executions += 1
        own = run()
        return own if isinstance(own, ExecutionResult) else await own

    # -- messages -----------------------------------------------------------------------

    def next_message_text(self, operation_id: str, payload: dict[str, Any]) -> str | None:
        """The graphql-transport-ws ``next`` message as strawberry's view encodes it
        (``json.dumps`` with compact separators), its payload encoded once per result;
        None when the payload is not a plain ``{"data": ...}`` (errors are per caller)."""
        if list(payload) != ["data"]:
            return None
        data = payload["data"]
        known = self._messages.get(id(data))
        if known is None or known[0] is not data:
            known = (data, json.dumps(payload, separators=(",", ":")))
            self._messages.put(id(data), known)
        return '{"id":' + json.dumps(operation_id) + ',"type":"next","payload":' + known[1] + "}"

    def forget(self) -> None:
        """Drop everything remembered (when the last subscription closes)."""
        self._nodes.clear()
        self._roots = {}
        self._results.clear()
        self._messages.clear()


class _SharedResult:
    """One execution's result, for the subscribers of the same key that wait for it."""

    __slots__ = ("_done", "_keep_alive", "_result")

    def __init__(self, keep_alive: tuple[object, ...]) -> None:
        self._keep_alive = keep_alive
        self._result: ExecutionResult | None = None
        self._done = asyncio.Event()

    def settle(self, result: ExecutionResult | None) -> None:
        # Only a clean answer is shared; errors carry the executing caller's request id.
        self._result = result if result is not None and not result.errors else None
        self._done.set()

    async def wait(self) -> ExecutionResult | None:
        await self._done.wait()
        return self._result
