"""Run events: every change of a run, for GraphQL subscriptions and the CLI's progress bar.

One port, :class:`RunEvents`, with two adapters: :class:`MemoryRunEvents`
(one process: ``segport serve`` without Redis) and :class:`RedisRunEvents`
(API and workers in separate processes). Progress events are coalesced on
the publishing side to a few per second per run; a status change and the
terminal state are always delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol

import orjson
import structlog

from service.coordination.redis import RedisClient
from service.domain import (
    ExportRun,
    ExportRunStatus,
    ExportRunTrigger,
    RunCounts,
    RunError,
)

log = structlog.get_logger(__name__)

PROGRESS_INTERVAL_SECONDS = 0.25
"""At most one progress event per run per this interval (status changes are never held)."""

CHANNEL = "segport:runs"


class RunEvents(Protocol):
    async def publish(self, run: ExportRun) -> None:
        """Announce ``run`` as it is now."""

    def subscribe(
        self, *, run_id: str | None = None, export_id: str | None = None
    ) -> RunSubscription:
        """Runs as they change (of one run, or one export's runs, or all)."""

    async def aclose(self) -> None: ...


# -- serialization ------------------------------------------------------------------------


def run_to_bytes(run: ExportRun) -> bytes:
    return orjson.dumps(run)


def run_from_bytes(data: bytes | str) -> ExportRun:
    raw: dict[str, Any] = orjson.loads(data)
    return ExportRun(
        id=raw["id"],
        export_id=raw["export_id"],
        status=ExportRunStatus(raw["status"]),
        trigger=ExportRunTrigger(raw["trigger"]),
        requested_by=raw.get("requested_by"),
        queued_at=_time(raw["queued_at"]),
        started_at=_optional_time(raw.get("started_at")),
        finished_at=_optional_time(raw.get("finished_at")),
        progress=float(raw.get("progress", 0.0)),
        counts=RunCounts(**raw.get("counts", {})),
        message=raw.get("message"),
        errors=[RunError(**e) for e in raw.get("errors", [])],
        checkpoint=raw.get("checkpoint") or {},
        cancel_requested=bool(raw.get("cancel_requested", False)),
        dedupe_key=raw.get("dedupe_key"),
        attempt=int(raw.get("attempt", 0)),
    )


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _optional_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


# -- coalescing -------------------------------------------------------------------------------


class ProgressCoalescer:
    """Holds back progress-only events so each run sends a few per second at most.

    An event whose status or message differs from the last one sent for that run
    goes out at once (after dropping any held progress, which it supersedes): a
    message says why a run waits, retries or ended, and must not be coalesced away.
    """

    def __init__(
        self,
        send: Callable[[ExportRun], Awaitable[None]],
        interval: float = PROGRESS_INTERVAL_SECONDS,
    ) -> None:
        self._send = send
        self._interval = interval
        self._last_status: dict[str, ExportRunStatus] = {}
        self._last_message: dict[str, str | None] = {}
        self._last_sent: dict[str, float] = {}
        self._held: dict[str, ExportRun] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def publish(self, run: ExportRun) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        sent_before = run.id in self._last_status
        news = (
            not sent_before
            or self._last_status[run.id] != run.status
            or self._last_message[run.id] != run.message
        )
        if news or run.status.is_terminal:
            self._drop_held(run.id)
            await self._emit(run, now)
            if run.status.is_terminal:
                self._forget(run.id)
            return
        since = now - self._last_sent.get(run.id, float("-inf"))
        if since >= self._interval and run.id not in self._held:
            await self._emit(run, now)
            return
        first_hold = run.id not in self._held
        self._held[run.id] = run
        if first_hold:
            delay = max(0.0, self._interval - since)
            self._timers[run.id] = loop.call_later(delay, self._flush_later, run.id)

    def _flush_later(self, run_id: str) -> None:
        self._timers.pop(run_id, None)
        run = self._held.pop(run_id, None)
        if run is None:
            return
        task = asyncio.get_running_loop().create_task(
            self._emit(run, asyncio.get_running_loop().time())
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _emit(self, run: ExportRun, now: float) -> None:
        self._last_status[run.id] = run.status
        self._last_message[run.id] = run.message
        self._last_sent[run.id] = now
        try:
            await self._send(run)
        except Exception:
            # Events are a view of the store; a lost one must never break a run.
            log.warning("run_event_not_sent", run_id=run.id, exc_info=True)

    def _drop_held(self, run_id: str) -> None:
        self._held.pop(run_id, None)
        timer = self._timers.pop(run_id, None)
        if timer is not None:
            timer.cancel()

    def _forget(self, run_id: str) -> None:
        self._last_status.pop(run_id, None)
        self._last_message.pop(run_id, None)
        self._last_sent.pop(run_id, None)

    async def aclose(self) -> None:
        for run_id in list(self._held):
            run = self._held.pop(run_id)
            self._drop_held(run_id)
            await self._emit(run, 0.0)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


# -- subscriptions ------------------------------------------------------------------------------


class RunSubscription:
    """An async iterator of runs matching a filter.

    It starts listening at :meth:`start` (or at the first ``__anext__``);
    events published after ``start`` returns are never missed.
    """

    def __init__(
        self,
        run_id: str | None,
        export_id: str | None,
        attach: Callable[[RunSubscription], Awaitable[None]],
        detach: Callable[[RunSubscription], Awaitable[None]],
    ) -> None:
        self.run_id = run_id
        self.export_id = export_id
        self._attach = attach
        self._detach = detach
        # A deque made only while something is pending and a future only while waiting,
        # not an asyncio.Queue: a dashboard keeps a thousand of these open, and a Queue is
        # four deques and an Event (about 3 KiB each, idle; docs/performance.md).
        self._pending: deque[ExportRun | None] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._started = False
        self._closed = False

    def matches(self, run: ExportRun) -> bool:
        if self.run_id is not None and run.id != self.run_id:
            return False
        return self.export_id is None or run.export_id == self.export_id

    def deliver(self, run: ExportRun) -> None:
        if not self._closed and self.matches(run):
            self._put(run)

    def end(self) -> None:
        """The source is gone: the iterator stops."""
        self._put(None)

    def _put(self, item: ExportRun | None) -> None:
        if self._pending is None:
            self._pending = deque()
        self._pending.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _get(self) -> ExportRun | None:
        while not self._pending:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        item = self._pending.popleft()
        if not self._pending:
            self._pending = None
        return item

    async def start(self) -> RunSubscription:
        if not self._started:
            self._started = True
            await self._attach(self)
        return self

    def __aiter__(self) -> AsyncIterator[ExportRun]:
        return self

    async def __anext__(self) -> ExportRun:
        if self._closed:
            raise StopAsyncIteration
        await self.start()
        run = await self._get()
        if run is None:
            await self.aclose()
            raise StopAsyncIteration
        return run

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            if self._started:
                await self._detach(self)

    async def __aenter__(self) -> RunSubscription:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class MemoryRunEvents:
    """In-process broadcaster."""

    def __init__(self, interval: float = PROGRESS_INTERVAL_SECONDS) -> None:
        self._subscriptions: set[RunSubscription] = set()
        self._coalescer = ProgressCoalescer(self._broadcast, interval)

    async def publish(self, run: ExportRun) -> None:
        await self._coalescer.publish(run)

    async def _broadcast(self, run: ExportRun) -> None:
        # Each subscriber gets its own copy: nobody can change what another sees.
        data = run_to_bytes(run)
        for subscription in list(self._subscriptions):
            if subscription.matches(run):
                subscription.deliver(run_from_bytes(data))

    def subscribe(
        self, *, run_id: str | None = None, export_id: str | None = None
    ) -> RunSubscription:
        return RunSubscription(run_id, export_id, self._attach, self._detach)

    async def _attach(self, subscription: RunSubscription) -> None:
        self._subscriptions.add(subscription)

    async def _detach(self, subscription: RunSubscription) -> None:
        self._subscriptions.discard(subscription)

    async def aclose(self) -> None:
        await self._coalescer.aclose()
        for subscription in list(self._subscriptions):
            subscription.end()


class RedisRunEvents:
    """Redis pub/sub: one channel, runs as orjson; subscribers filter what they want.

    One connection listens for the whole process and fans out to local
    subscriptions, so a thousand open subscriptions cost one Redis connection.
    """

    def __init__(
        self,
        redis: RedisClient,
        *,
        channel: str = CHANNEL,
        interval: float = PROGRESS_INTERVAL_SECONDS,
    ) -> None:
        self._redis = redis
        """The process's client (``services.redis``); it is closed by its owner, not here."""
        self._channel = channel
        self._coalescer = ProgressCoalescer(self._send, interval)
        self._subscriptions: set[RunSubscription] = set()
        self._listener: asyncio.Task[None] | None = None
        self._ready: asyncio.Event | None = None
        self._lock = asyncio.Lock()

    async def publish(self, run: ExportRun) -> None:
        await self._coalescer.publish(run)

    async def _send(self, run: ExportRun) -> None:
        await self._redis.publish(self._channel, run_to_bytes(run))

    def subscribe(
        self, *, run_id: str | None = None, export_id: str | None = None
    ) -> RunSubscription:
        return RunSubscription(run_id, export_id, self._attach, self._detach)

    async def _attach(self, subscription: RunSubscription) -> None:
        self._subscriptions.add(subscription)
        async with self._lock:
            if self._listener is None or self._listener.done():
                self._ready = asyncio.Event()
                self._listener = asyncio.create_task(self._listen(self._ready))
            ready = self._ready
        assert ready is not None
        await ready.wait()

    async def _detach(self, subscription: RunSubscription) -> None:
        self._subscriptions.discard(subscription)

    async def _listen(self, ready: asyncio.Event) -> None:
        pubsub = self._redis.pubsub()
        try:
            await pubsub.subscribe(self._channel)
            # The subscribe is confirmed by Redis before anyone counts on it.
            while True:
                message = await pubsub.get_message(timeout=1.0)
                if message is None:
                    continue
                if message["type"] == "subscribe":
                    ready.set()
                    continue
                if message["type"] != "message":
                    continue
                try:
                    run = run_from_bytes(message["data"])
                except (ValueError, KeyError, TypeError):
                    log.warning("run_event_unreadable", channel=self._channel)
                    continue
                for subscription in list(self._subscriptions):
                    subscription.deliver(run)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("run_events_listener_failed", exc_info=True)
            for subscription in list(self._subscriptions):
                subscription.end()
            self._subscriptions.clear()
        finally:
            ready.set()
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[attr-defined]

    async def aclose(self) -> None:
        await self._coalescer.aclose()
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
        for subscription in list(self._subscriptions):
            subscription.end()


def open_run_events(redis: RedisClient | None) -> RunEvents:
    """Redis pub/sub when the process has a Redis client, else in-process."""
    if redis is not None:
        return RedisRunEvents(redis)
    return MemoryRunEvents()


_STAGE = {ExportRunStatus.QUEUED: 0, ExportRunStatus.RUNNING: 1}


def _stage(run: ExportRun) -> int:
    return _STAGE.get(run.status, 2)


async def follow_run(
    store: RunReader, events: RunEvents, run_id: str, *, recheck_seconds: float = 5.0
) -> AsyncIterator[ExportRun]:
    """The run now, then every change, ending after a terminal state.

    Stale or repeated events are skipped, so what is yielded never goes
    backwards; when no event comes for ``recheck_seconds`` the store is read
    again (pub/sub may lose a message; the store is the truth).
    """
    async with events.subscribe(run_id=run_id) as subscription:
        current = await store.get_run(run_id)
        if current is None:
            return
        yield current
        last = current
        iterator = aiter(subscription)
        while not last.status.is_terminal:
            try:
                run: ExportRun | None = await asyncio.wait_for(
                    anext(iterator), timeout=recheck_seconds
                )
            except TimeoutError:
                run = await store.get_run(run_id)
            except StopAsyncIteration:
                run = await store.get_run(run_id)
                if run is None or run == last:
                    return
            if run is None:
                return
            if _stage(run) < _stage(last) or (
                _stage(run) == _stage(last) and run.progress < last.progress
            ):
                continue
            if run == last:
                continue
            last = run
            yield run


class RunReader(Protocol):
    async def get_run(self, run_id: str) -> ExportRun | None: ...
