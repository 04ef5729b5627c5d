"""The run queue under test, once per adapter: inline (asyncio tasks) and arq (real Redis).

Either way the queue's jobs are a :class:`JobLog`'s, which records what each
job did and holds the jobs a test wants kept running. The arq adapter gets an
arq worker in this process (the real :class:`arq.worker.Worker`, on Redis
database 5, flushed by this suite) serving :data:`JOB_FUNCTION` with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from arq.connections import RedisSettings
from arq.worker import Worker, func
from redis.asyncio import Redis

from service.coordination.queue import (
    JOB_FUNCTION,
    ArqRunQueue,
    InlineRunQueue,
    RunQueue,
    job_id,
)
from tests.support.redis_db import flushed_redis, shared_redis_url

REDIS_URL = shared_redis_url(5)
CONCURRENCY = 1
"""One job at a time: a held job keeps the others waiting, so tests control the order."""
WAIT_SECONDS = 10.0
"""How long a test waits for what a job must do (a bound, not a timing)."""


@dataclass
class JobLog:
    """What the queue's jobs did, in order, and which runs' jobs are held running."""

    started: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    _held: dict[str, asyncio.Event] = field(default_factory=dict)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def hold(self, run_id: str) -> None:
        """The next jobs of ``run_id`` keep running until :meth:`release`."""
        self._held[run_id] = asyncio.Event()

    def release(self, run_id: str) -> None:
        self._held.pop(run_id).set()

    def release_all(self) -> None:
        for run_id in list(self._held):
            self.release(run_id)

    async def carry(self, run_id: str) -> None:
        """The job: note the start, wait while held, note how it ended."""
        self._note(self.started, run_id)
        try:
            gate = self._held.get(run_id)
            if gate is not None:
                await gate.wait()
        except asyncio.CancelledError:
            self._note(self.cancelled, run_id)
            raise
        self._note(self.finished, run_id)

    def _note(self, where: list[str], run_id: str) -> None:
        where.append(run_id)
        self._changed.set()

    async def until(self, check: Callable[[], bool]) -> None:
        """Until ``check()`` holds (jobs run in this event loop)."""

        async def wait() -> None:
            while not check():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(wait(), WAIT_SECONDS)

    async def until_finished(self, run_id: str, times: int = 1) -> None:
        await self.until(lambda: self.finished.count(run_id) >= times)


@dataclass
class QueueUnderTest:
    name: str
    queue: RunQueue
    jobs: JobLog
    has_job: Callable[[str], Awaitable[bool]]
    """Whether a job for the run waits or runs in this adapter's own terms."""


@contextlib.asynccontextmanager
async def inline_queue(jobs: JobLog) -> AsyncIterator[QueueUnderTest]:
    queue = InlineRunQueue(CONCURRENCY)

    async def job(run_id: str, closing: Callable[[], bool]) -> None:
        await jobs.carry(run_id)

    queue.bind(job)

    async def has_job(run_id: str) -> bool:
        return run_id in queue.running()

    try:
        yield QueueUnderTest("inline", queue, jobs, has_job)
    finally:
        jobs.release_all()
        await queue.aclose()


@contextlib.asynccontextmanager
async def arq_queue(jobs: JobLog) -> AsyncIterator[QueueUnderTest]:
    async def run_export(ctx: dict[str, Any], run_id: str) -> str:
        await jobs.carry(run_id)
        return "done"

    async with flushed_redis(REDIS_URL) as redis:
        worker = Worker(
            functions=[func(run_export, name=JOB_FUNCTION)],
            redis_settings=RedisSettings.from_dsn(REDIS_URL),
            handle_signals=False,
            allow_abort_jobs=True,
            max_jobs=CONCURRENCY,
            poll_delay=0.05,
        )
        serving = asyncio.create_task(worker.async_run())
        queue = ArqRunQueue(REDIS_URL)
        try:
            yield QueueUnderTest("arq", queue, jobs, _arq_job_lookup(redis))
        finally:
            jobs.release_all()
            await queue.aclose()
            await _stop(worker)
            with contextlib.suppress(asyncio.CancelledError):
                await serving


async def _stop(worker: Worker) -> None:
    """Let the worker's jobs end (arq writes their results after them), then close it."""
    worker.allow_pick_jobs = False
    while pending := [task for task in worker.tasks.values() if not task.done()]:
        await asyncio.wait(pending)
    with warnings.catch_warnings():
        # arq 0.28 closes its pool with redis-py's deprecated close(); not ours to change.
        warnings.filterwarnings("ignore", "Call to deprecated close", DeprecationWarning)
        await worker.close()


def _arq_job_lookup(redis: Redis[bytes]) -> Callable[[str], Awaitable[bool]]:
    async def has_job(run_id: str) -> bool:
        # arq keeps a job's key from enqueue until the job ends (resumes add a suffix).
        return bool(await redis.keys(f"arq:job:{job_id(run_id)}*"))

    return has_job


@pytest.fixture(params=["inline", "arq"])
async def adapter(request: pytest.FixtureRequest) -> AsyncIterator[QueueUnderTest]:
    jobs = JobLog()
    opened = inline_queue(jobs) if request.param == "inline" else arq_queue(jobs)
    async with opened as under_test:
        await under_test.queue.start()
        yield under_test
