"""A few operations executing at a time, the others waiting their turn in order.

Under load, executing every operation that arrives at once made each one
dearer: with fifty pages in flight the event loop switched between fifty
executions at every ``await``, each with its own working set, and the CPU
per request grew with the number of clients (15 ms at one client, 26-36 ms
at fifty on the exports page, the collector turned off or not; see
docs/performance.md). Admitting :data:`EXECUTING_AT_ONCE` at a time, first
come first served, kept it flat and raised the throughput; an operation
waits in the queue no longer than it would have spent interleaved with the
others.

Waiting on something slow outside the process should not hold a turn: a
call to a destination (:mod:`service.api.destination_calls`) and a sync
preview's walk step out of the gate with :func:`outside_gate` and queue
again when done. Subscriptions never take a turn (they last as long as the
client listens).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

EXECUTING_AT_ONCE = 4
"""Operations executing at a time in one process (measured: 2 to 8 all keep the CPU per
request within 1.2 times of one client's at fifty clients; 4 leaves room for a slow one)."""


@dataclass
class _Turn:
    """One operation's turn: whether it holds it, and its resolvers waiting outside."""

    gate: ExecutionGate
    held: bool = False
    outside: int = 0
    ended: bool = False

    async def take(self) -> None:
        await self.gate.acquire()
        if self.ended:
            self.gate.release()
        else:
            self.held = True

    def give_back(self) -> None:
        if self.held:
            self.held = False
            self.gate.release()


@dataclass
class ExecutionGate:
    """The process's turns (one per schema)."""

    size: int = EXECUTING_AT_ONCE
    _turns: asyncio.Semaphore | None = field(default=None, init=False, repr=False)

    def _semaphore(self) -> asyncio.Semaphore:
        # Made on first use, inside the serving loop.
        if self._turns is None:
            self._turns = asyncio.Semaphore(self.size)
        return self._turns

    async def acquire(self) -> None:
        await self._semaphore().acquire()

    def release(self) -> None:
        self._semaphore().release()


_current: ContextVar[_Turn | None] = ContextVar("segport_execution_turn", default=None)


@asynccontextmanager
async def outside_gate() -> AsyncIterator[None]:
    """Give the current operation's turn to the next one while waiting on something slow."""
    turn = _current.get()
    if turn is None or turn.ended:
        yield
        return
    if turn.outside == 0:
        turn.give_back()
    turn.outside += 1
    try:
        yield
    finally:
        turn.outside -= 1
        if turn.outside == 0 and not turn.ended:
            await turn.take()


class ExecutionTurns(SchemaExtension):
    """Execute a query or mutation only in its turn (module doc)."""

    def __init__(self, gate: ExecutionGate) -> None:
        self.gate = gate

    async def on_execute(self) -> AsyncIterator[None]:
        if self.execution_context.operation_type is OperationType.SUBSCRIPTION:
            yield
            return
        turn = _Turn(self.gate)
        await turn.take()
        token = _current.set(turn)
        try:
            yield
        finally:
            _current.reset(token)
            turn.ended = True
            turn.give_back()
