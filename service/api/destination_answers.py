"""Destination answers a GraphQL client waits for: asked once, reused briefly, budgeted per user.

Two hundred aliases of ``exportSettingChoices`` in one query would otherwise
each call the destination, spending the application's shared quota (Constant
Contact: 4 calls a second, 10,000 a day) that runs need. So, for one key
(a connection and a setting):

- one operation makes at most one call: its aliases share the call, and its
  outcome, failure included (:class:`OperationMemo` gives each operation its memo);
- one call at a time: whoever asks while a call is under way waits for it;
- a successful answer is reused for ``cache_seconds``;
- each user may cause at most ``budget`` calls an hour; past it
  :class:`DestinationCallBudgetSpent` says when to try again. Reused answers
  cost nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from strawberry.extensions import SchemaExtension

from service.api.execution_gate import outside_gate
from service.settings import Settings

T = TypeVar("T")

BUDGET_WINDOW_SECONDS = 3600.0
DESTINATION_CALL_BUDGET_SPENT = "DESTINATION_CALL_BUDGET_SPENT"

_operation_memo: ContextVar[dict[Hashable, asyncio.Future[Any]] | None] = ContextVar(
    "destination_answers_of_the_operation", default=None
)


class OperationMemo(SchemaExtension):
    """Gives each operation, on any transport, its own memo of destination answers.

    A context variable rather than the request context: a websocket's context
    lives as long as the socket, an operation's memo must not.
    """

    def on_execute(self) -> Iterator[None]:
        token = _operation_memo.set({})
        try:
            yield
        finally:
            _operation_memo.reset(token)


class DestinationCallBudgetSpent(Exception):
    """The caller caused ``budget`` destination calls within the last hour."""

    def __init__(self, budget: int, retry_in_seconds: float) -> None:
        minutes = max(1, round(retry_in_seconds / 60))
        self.message = (
            f"You have caused {budget} calls to destinations within the last hour, the "
            f"most allowed (SEGPORT_DESTINATION_CALL_BUDGET); try again in {minutes} "
            f"minute{'s' if minutes != 1 else ''}."
        )
        super().__init__(self.message)


@dataclass
class DestinationAnswers:
    """The process's shared answers and per-user budgets (one per app)."""

    cache_seconds: float
    budget: int
    clock: Callable[[], float] = time.monotonic
    _answers: dict[Hashable, tuple[float, Any]] = field(default_factory=dict)
    _under_way: dict[Hashable, asyncio.Task[Any]] = field(default_factory=dict)
    _spent: dict[str, deque[float]] = field(default_factory=dict)

    @classmethod
    def of(cls, settings: Settings) -> DestinationAnswers:
        return cls(
            cache_seconds=settings.destination_call_cache_seconds,
            budget=settings.destination_call_budget,
        )

    async def answer(self, key: Hashable, caller: str, call: Callable[[], Awaitable[T]]) -> T:
        """``await call()`` for ``key``, unless this operation, a call under way or the cache
        has the answer; raises DestinationCallBudgetSpent when ``caller`` may call no more."""
        memo = _operation_memo.get()
        if memo is not None and key in memo:
            return cast(T, await _waited(memo[key]))
        outcome = self._outcome(key, caller, call)
        if memo is not None:
            memo[key] = outcome
        return cast(T, await _waited(outcome))

    def _outcome(
        self, key: Hashable, caller: str, call: Callable[[], Awaitable[T]]
    ) -> asyncio.Future[Any]:
        now = self.clock()
        cached = self._answers.get(key)
        if cached is not None and cached[0] > now:
            done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            done.set_result(cached[1])
            return done
        if key in self._under_way:
            return self._under_way[key]
        self._charge(caller, now)
        task = asyncio.ensure_future(call())
        self._under_way[key] = task
        task.add_done_callback(lambda finished: self._finished(key, finished))
        return task

    def _finished(self, key: Hashable, task: asyncio.Task[Any]) -> None:
        self._under_way.pop(key, None)
        if task.cancelled() or task.exception() is not None:
            return  # failures are not reused beyond the operation (the memo has them)
        if self.cache_seconds > 0:
            now = self.clock()
            self._answers = {k: v for k, v in self._answers.items() if v[0] > now}
            self._answers[key] = (now + self.cache_seconds, task.result())

    def _charge(self, caller: str, now: float) -> None:
        spent = self._spent.setdefault(caller, deque())
        while spent and spent[0] <= now - BUDGET_WINDOW_SECONDS:
            spent.popleft()
        if len(spent) >= self.budget:
            raise DestinationCallBudgetSpent(self.budget, spent[0] + BUDGET_WINDOW_SECONDS - now)
        spent.append(now)


async def _waited(outcome: asyncio.Future[Any]) -> Any:
    """The outcome; while it is not there yet (another operation's call to the destination),
    this operation's execution turn goes to the next one (:mod:`service.api.execution_gate`)."""
    if outcome.done():
        return await asyncio.shield(outcome)
    async with outside_gate():
        return await asyncio.shield(outcome)
