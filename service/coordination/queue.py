"""Where run jobs wait: the :class:`RunQueue` port and its two adapters.

:class:`InlineRunQueue` runs jobs as asyncio tasks inside ``segport serve``
(embedded mode); :class:`ArqRunQueue` hands them to arq workers through Redis
(distributed mode). Either way a job is "carry this run to its end", and
enqueueing the same run twice does one job.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Protocol

import structlog

from service.domain import ExportRunStatus, utcnow

if TYPE_CHECKING:
    from arq.connections import ArqRedis

    from service.core import Services

log = structlog.get_logger(__name__)

JOB_FUNCTION = "run_export"


def job_id(run_id: str) -> str:
    """The arq job id of a run: deterministic, so enqueueing twice makes one job."""
    return f"run:{run_id}"


class RunQueue(Protocol):
    async def enqueue(self, run_id: str) -> None:
        """Make sure a job will carry ``run_id`` (idempotent)."""

    async def resume(self, run_id: str, attempt: int) -> None:
        """Start a new job for a RUNNING run whose job died (``attempt`` makes it unique)."""

    async def abort(self, run_id: str) -> None:
        """Interrupt the run's job now, if it is running here or anywhere."""

    async def start(self, services: Services) -> None:
        """Begin serving (the inline queue starts jobs and recovers unfinished runs)."""

    async def aclose(self) -> None: ...


class InlineRunQueue:
    """Jobs as asyncio tasks in this process, at most ``concurrency`` at once."""

    def __init__(self, concurrency: int, max_tries: int) -> None:
        self._slots = asyncio.Semaphore(concurrency)
        self._max_tries = max_tries
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._services: Services | None = None
        self._closing = False

    def bind(self, services: Services) -> None:
        """Jobs run with ``services`` (set by :func:`service.core.open_services`)."""
        self._services = services

    async def start(self, services: Services) -> None:
        self._services = services
        # Runs left QUEUED or RUNNING by a previous process continue now: in
        # embedded mode this process is the only one that could be running them.
        for run in await services.store.list_active_runs():
            await self.enqueue(run.id)

    async def enqueue(self, run_id: str) -> None:
        if self._closing or self._services is None:
            return
        task = self._tasks.get(run_id)
        if task is not None and not task.done():
            return
        task = asyncio.create_task(self._job(self._services, run_id), name=job_id(run_id))
        self._tasks[run_id] = task
        task.add_done_callback(lambda t: self._forget(run_id, t))

    async def resume(self, run_id: str, attempt: int) -> None:
        await self.enqueue(run_id)

    def _forget(self, run_id: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(run_id) is task:
            del self._tasks[run_id]

    async def _job(self, services: Services, run_id: str) -> None:
        from service.runs.pipeline import TransientRunError
        from service.worker import after_transient_failure, perform_run

        async with self._slots:
            for attempt in range(1, self._max_tries + 1):
                try:
                    await perform_run(services, run_id, takeover=True)
                    return
                except TransientRunError as exc:
                    if self._closing:
                        return  # left resumable: the next start recovers it
                    delay = await after_transient_failure(
                        services, run_id, attempt, self._max_tries, str(exc)
                    )
                    if delay is None:
                        return
                    await asyncio.sleep(delay)

    async def abort(self, run_id: str) -> None:
        task = self._tasks.get(run_id)
        if task is not None and not task.done():
            task.cancel()

    async def aclose(self) -> None:
        self._closing = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def running(self) -> list[str]:
        """Run ids with a live job here (for tests and /metrics)."""
        return [run_id for run_id, task in self._tasks.items() if not task.done()]


class ArqRunQueue:
    """Jobs in Redis for ``segport worker`` processes (arq)."""

    def __init__(self, redis_url: str) -> None:
        self._redis_url = redis_url
        self._pool: ArqRedis | None = None

    async def _redis(self) -> ArqRedis:
        if self._pool is None:
            from arq import create_pool
            from arq.connections import RedisSettings

            self._pool = await create_pool(RedisSettings.from_dsn(self._redis_url))
        return self._pool

    async def start(self, services: Services) -> None:
        await self._redis()

    async def enqueue(self, run_id: str) -> None:
        pool = await self._redis()
        await pool.enqueue_job(JOB_FUNCTION, run_id, _job_id=job_id(run_id))

    async def resume(self, run_id: str, attempt: int) -> None:
        pool = await self._redis()
        await pool.enqueue_job(JOB_FUNCTION, run_id, _job_id=f"{job_id(run_id)}:resume:{attempt}")

    async def abort(self, run_id: str) -> None:
        from arq.constants import abort_jobs_ss
        from arq.utils import timestamp_ms

        pool = await self._redis()
        # What arq's Job.abort does, without waiting for the job's result: the
        # worker cancels the task; the run also sees its cancel flag within seconds.
        await pool.zadd(abort_jobs_ss, {job_id(run_id): timestamp_ms()})

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()  # type: ignore[attr-defined]
            self._pool = None


def open_run_queue(redis_url: str | None, concurrency: int, max_tries: int) -> RunQueue:
    if redis_url:
        return ArqRunQueue(redis_url)
    return InlineRunQueue(concurrency, max_tries)


async def recover_runs(services: Services, stale_after_seconds: float) -> list[str]:
    """Give every unfinished run a job: QUEUED ones whose job may be lost, and RUNNING ones
    whose job stopped (released, or no heartbeat for ``stale_after_seconds``).

    Safe to call from any number of processes at once: enqueueing is idempotent
    and a job only takes a run it can claim.
    """
    from service.runs.pipeline import heartbeat_age

    now = utcnow()
    recovered: list[str] = []
    for run in await services.store.list_active_runs():
        with contextlib.suppress(Exception):
            if run.status is ExportRunStatus.QUEUED:
                await services.queue.enqueue(run.id)
                continue
            age = heartbeat_age(run, now)
            if age is None or age.total_seconds() > stale_after_seconds:
                await services.queue.resume(run.id, run.attempt)
                recovered.append(run.id)
    return recovered
