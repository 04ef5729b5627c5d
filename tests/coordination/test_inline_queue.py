"""What only the inline queue does: it runs the job it is bound to, here, a few at a time,
and closing it stops its running jobs (they checkpoint; the next start continues them)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from service.coordination.queue import InlineRunQueue
from tests.coordination.conftest import JobLog


async def test_an_unbound_queue_takes_no_job() -> None:
    queue = InlineRunQueue(concurrency=2)

    await queue.enqueue("run-a")

    assert queue.running() == []


async def test_at_most_concurrency_jobs_run_at_once() -> None:
    jobs = JobLog()
    queue = InlineRunQueue(concurrency=2)

    async def job(run_id: str, closing: Callable[[], bool]) -> None:
        await jobs.carry(run_id)

    queue.bind(job)
    for run_id in ("run-a", "run-b", "run-c"):
        jobs.hold(run_id)
        await queue.enqueue(run_id)
    await jobs.until(lambda: len(jobs.started) == 2)

    assert sorted(queue.running()) == ["run-a", "run-b", "run-c"]
    jobs.release(jobs.started[0])
    await jobs.until(lambda: len(jobs.started) == 3)
    assert sorted(jobs.started) == ["run-a", "run-b", "run-c"]
    jobs.release_all()
    await queue.aclose()


async def test_closing_cancels_the_running_jobs_which_see_the_queue_closing() -> None:
    seen_closing: list[bool] = []
    started = asyncio.Event()
    queue = InlineRunQueue(concurrency=2)

    async def job(run_id: str, closing: Callable[[], bool]) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            seen_closing.append(closing())
            raise

    queue.bind(job)
    await queue.enqueue("run-a")
    await asyncio.wait_for(started.wait(), 10)

    await queue.aclose()

    assert seen_closing == [True]
    assert queue.running() == []
