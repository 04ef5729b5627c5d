"""The contract of the run queue port: what every adapter (inline and arq) must do.

A job is "carry this run"; what it does is not the queue's business (here, a
:class:`~tests.coordination.conftest.JobLog` records it). Both adapters:

- give an enqueued run a job, and make one job however often the run is
  enqueued while that job waits or runs;
- make a new job for each new attempt a run is resumed with, and one job for
  an attempt resumed twice while its job waits;
- interrupt a run's running job on abort, and never start a job aborted while
  it waited;
- take no more jobs once closed (closing twice is harmless).

Left unspecified because the adapters differ on purpose: enqueueing a run
whose job already ended (arq keeps the result an hour and makes no job, the
inline queue makes one; a new attempt is what :meth:`resume` is for), and
whether a resumed job may run beside the run's first one (the run's attempt
claim in the store keeps two jobs from carrying one run).
"""

from __future__ import annotations

from tests.coordination.conftest import QueueUnderTest


async def test_an_enqueued_run_gets_a_job(adapter: QueueUnderTest) -> None:
    await adapter.queue.enqueue("run-a")

    await adapter.jobs.until_finished("run-a")

    assert adapter.jobs.started == ["run-a"]


async def test_a_run_enqueued_again_while_its_job_waits_or_runs_makes_one_job(
    adapter: QueueUnderTest,
) -> None:
    jobs = adapter.jobs
    jobs.hold("run-a")
    await adapter.queue.enqueue("run-a")
    await jobs.until(lambda: jobs.started == ["run-a"])

    await adapter.queue.enqueue("run-a")  # while its job runs
    await adapter.queue.enqueue("run-b")
    await adapter.queue.enqueue("run-b")  # while its job waits for run-a's
    jobs.release("run-a")
    await adapter.queue.enqueue("run-c")
    await jobs.until_finished("run-c")

    assert jobs.started == ["run-a", "run-b", "run-c"]


async def test_each_new_attempt_a_run_is_resumed_with_makes_a_new_job(
    adapter: QueueUnderTest,
) -> None:
    await adapter.queue.enqueue("run-a")
    await adapter.jobs.until_finished("run-a")

    await adapter.queue.resume("run-a", 1)
    await adapter.jobs.until_finished("run-a", times=2)
    await adapter.queue.resume("run-a", 2)
    await adapter.jobs.until_finished("run-a", times=3)

    assert adapter.jobs.started == ["run-a", "run-a", "run-a"]


async def test_an_attempt_resumed_twice_while_its_job_waits_makes_one_job(
    adapter: QueueUnderTest,
) -> None:
    jobs = adapter.jobs
    jobs.hold("run-x")
    await adapter.queue.enqueue("run-x")
    await jobs.until(lambda: jobs.started == ["run-x"])

    await adapter.queue.resume("run-a", 1)
    await adapter.queue.resume("run-a", 1)
    jobs.release("run-x")
    await adapter.queue.enqueue("run-c")
    await jobs.until_finished("run-c")

    assert jobs.started == ["run-x", "run-a", "run-c"]


async def test_abort_interrupts_the_running_job_of_the_run(adapter: QueueUnderTest) -> None:
    jobs = adapter.jobs
    jobs.hold("run-a")
    await adapter.queue.enqueue("run-a")
    await jobs.until(lambda: jobs.started == ["run-a"])

    await adapter.queue.abort("run-a")
    await jobs.until(lambda: jobs.cancelled == ["run-a"])
    await adapter.queue.enqueue("run-c")  # runs only once the aborted job let go of its slot
    await jobs.until_finished("run-c")

    assert jobs.finished == ["run-c"]
    assert jobs.started == ["run-a", "run-c"]


async def test_a_job_aborted_while_it_waits_never_starts(adapter: QueueUnderTest) -> None:
    jobs = adapter.jobs
    jobs.hold("run-x")
    await adapter.queue.enqueue("run-x")
    await jobs.until(lambda: jobs.started == ["run-x"])
    await adapter.queue.enqueue("run-a")

    await adapter.queue.abort("run-a")
    jobs.release("run-x")
    await adapter.queue.enqueue("run-c")
    await jobs.until_finished("run-c")

    assert jobs.started == ["run-x", "run-c"]
    assert not await adapter.has_job("run-a")


async def test_abort_of_a_run_without_a_job_changes_nothing(adapter: QueueUnderTest) -> None:
    jobs = adapter.jobs
    jobs.hold("run-a")
    await adapter.queue.enqueue("run-a")
    await jobs.until(lambda: jobs.started == ["run-a"])

    await adapter.queue.abort("run-none")
    jobs.release("run-a")
    await jobs.until_finished("run-a")

    assert jobs.cancelled == []


async def test_a_closed_queue_takes_no_more_jobs(adapter: QueueUnderTest) -> None:
    await adapter.queue.enqueue("run-a")
    await adapter.jobs.until_finished("run-a")

    await adapter.queue.aclose()
    await adapter.queue.enqueue("run-b")
    await adapter.queue.resume("run-c", 1)
    await adapter.queue.abort("run-b")
    await adapter.queue.aclose()

    assert not await adapter.has_job("run-b")
    assert not await adapter.has_job("run-c")
    assert adapter.jobs.started == ["run-a"]
