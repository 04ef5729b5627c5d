"""Where run jobs wait: the :class:`RunQueue` port and its two adapters.

:class:`InlineRunQueue` runs jobs as asyncio tasks inside ``segport serve``
(embedded mode); :class:`ArqRunQueue` hands them to arq workers through Redis
(distributed mode). Either way a job is "carry this run to its end", and
enqueueing the same run twice does one job. What a job does is not the
queue's business: the inline queue runs the job it is bound to (by the
wiring), arq workers run the function registered under :data:`JOB_FUNCTION`.

The contract both adapters keep is ``tests/coordination/test_queue_contract.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Protocol

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.constants import abort_jobs_ss
from arq.utils import timestamp_ms

JOB_FUNCTION = "run_export"
"""The name arq workers register the run job under."""

InlineJob = Callable[[str, Callable[[], bool]], Awaitable[None]]
"""Carries one run in this process: ``job(run_id, closing)``. ``closing()`` tells whether the
queue is shutting down (a job should then leave its run resumable rather than retry it)."""


def job_id(run_id: str) -> str:
    """The arq job id of a run: deterministic, so enqueueing twice makes one job."""
    return f"run:{run_id}"


def resume_job_id(run_id: str, attempt: int) -> str:
    """The arq job id that resumes ``run_id`` after its attempt ``attempt`` stopped."""
    return f"{job_id(run_id)}:resume:{attempt}"


class RunQueue(Protocol):
    async def enqueue(self, run_id: str) -> None:
        """Make sure a job will carry ``run_id`` (idempotent while that job waits or runs)."""

    async def resume(self, run_id: str, attempt: int) -> None:
        """Start a new job for a RUNNING run whose job died (``attempt`` makes it unique)."""

    async def abort(self, run_id: str) -> None:
        """Interrupt the run's job now, if it is running here or anywhere."""

    async def start(self) -> None:
        """Begin serving (connect, for the arq queue)."""

    async def aclose(self) -> None:
        """Take no more jobs (the inline queue also cancels its running ones); idempotent."""


class InlineRunQueue:
    """Jobs as asyncio tasks in this process, at most ``concurrency`` at once.

    Takes jobs once :meth:`bind` gave it the job to run (the wiring does, as it opens).
    """

    def __init__(self, concurrency: int) -> None:
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._job: InlineJob | None = None
        self._closing = False

    def bind(self, job: InlineJob) -> None:
        """Jobs are ``job(run_id, closing)`` from now on."""
        self._job = job

    async def start(self) -> None:
        # Nothing to connect: a bound queue serves as soon as it is asked.
        return None

    async def enqueue(self, run_id: str) -> None:
        if self._closing or self._job is None:
            return
        task = self._tasks.get(run_id)
        if task is not None and not task.done():
            return
        task = asyncio.create_task(self._carry(self._job, run_id), name=job_id(run_id))
        self._tasks[run_id] = task
        task.add_done_callback(lambda t: self._forget(run_id, t))

    async def resume(self, run_id: str, attempt: int) -> None:
        await self.enqueue(run_id)

    def _forget(self, run_id: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(run_id) is task:
            del self._tasks[run_id]

    async def _carry(self, job: InlineJob, run_id: str) -> None:
        async with self._slots:
            await job(run_id, self.closing)

    def closing(self) -> bool:
        """Whether :meth:`aclose` began (jobs then stop instead of retrying)."""
        return self._closing

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
        self._closed = False

    async def _redis(self) -> ArqRedis | None:
        """The connection pool, opened on first use; None once the queue is closed."""
        if self._closed:
            return None
        if self._pool is None:
            # No connection retries here: a request that finds Redis away fails at once
            # (its run says so, and the recovery sweep enqueues it later) instead of
            # holding the caller for arq's five one-second retries.
            settings = replace(RedisSettings.from_dsn(self._redis_url), conn_retries=0)
            self._pool = await create_pool(settings)
        return self._pool

    async def start(self) -> None:
        await self._redis()

    async def enqueue(self, run_id: str) -> None:
        pool = await self._redis()
        if pool is not None:
            await pool.enqueue_job(JOB_FUNCTION, run_id, _job_id=job_id(run_id))

    async def resume(self, run_id: str, attempt: int) -> None:
        pool = await self._redis()
        if pool is not None:
            await pool.enqueue_job(JOB_FUNCTION, run_id, _job_id=resume_job_id(run_id, attempt))

    async def abort(self, run_id: str) -> None:
        pool = await self._redis()
        if pool is None:
            return
        # What arq's Job.abort does, without waiting for the job's result: the
        # worker cancels the task; the run also sees its cancel flag within seconds.
        await pool.zadd(abort_jobs_ss, {job_id(run_id): timestamp_ms()})

    async def aclose(self) -> None:
        self._closed = True
        if self._pool is not None:
            await self._pool.aclose()  # type: ignore[attr-defined]
            self._pool = None


def open_run_queue(redis_url: str | None, concurrency: int) -> RunQueue:
    """The queue of the settings: arq on Redis when ``redis_url`` is set, else inline."""
    if redis_url:
        return ArqRunQueue(redis_url)
    return InlineRunQueue(concurrency)
