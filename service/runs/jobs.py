"""The run job: what carries a run, whichever queue it came from, and the schedule's tick.

A job may run more than once (a crash, a SIGTERM, a retry), so it is
idempotent: a job for a finished run does nothing, a job for a RUNNING run
resumes from its checkpoint, and two jobs never carry one run at once (a job
takes a run only when no other job's heartbeat is fresh, and claims the run's
attempt number once in the store).

Transient trouble is retried with backoff up to ``SEGPORT_JOB_MAX_TRIES``
attempts, then the run fails: :func:`carry_inline` loops here in embedded
mode; an arq job (:mod:`service.worker`) makes one :func:`carry_attempt` and
lets arq defer the next.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import structlog

from service.coordination.redis import REDIS_UNAVAILABLE
from service.domain import ExportRunStatus, utcnow
from service.runs.checkpoint import heartbeat_age
from service.runs.context import RunContext
from service.runs.errors import RunInterrupted, RunStopped, TransientRunError
from service.runs.lifecycle import execute_run, fail_run, note_retry
from service.runs.recovery import recover_runs, stale_after_seconds
from service.runs.schedule import ScheduleTicker

log = structlog.get_logger(__name__)


def retry_delay(attempt: int, base: float) -> float:
    """Seconds before attempt ``attempt + 1``: exponential with jitter, at most five minutes."""
    delay: float = min(300.0, base * 2 ** (attempt - 1))
    return delay * random.uniform(0.8, 1.2)


async def after_transient_failure(
    ctx: RunContext, run_id: str, attempt: int, max_tries: int, error: str
) -> float | None:
    """What a transient failure of attempt ``attempt`` means for the run.

    The seconds to wait before the next attempt, with the run saying so (a failure that
    will be retried reads differently from a permanent one); or None after the last
    attempt, when the run has failed for good (and admins were notified).
    """
    if attempt >= max_tries:
        await fail_run(ctx, run_id, f"Gave up after {attempt} attempts: {error}")
        return None
    delay = retry_delay(attempt, ctx.settings.job_retry_base_seconds)
    log.info("run_retrying", run_id=run_id, attempt=attempt, error=error)
    await note_retry(
        ctx,
        run_id,
        f"Attempt {attempt} of {max_tries} failed and will be retried in about "
        f"{max(1, round(delay))} s: {error}",
    )
    return delay


async def perform_run(ctx: RunContext, run_id: str, *, takeover: bool = False) -> str:
    """Carry the run if this job may; returns what happened (for the job's result).

    ``takeover``: carry a RUNNING run even if its heartbeat is fresh (an embedded
    process continuing its own runs after a restart).
    """
    store = ctx.store
    run = await store.get_run(run_id)
    if run is None:
        return "missing"
    if run.status.is_terminal:
        return f"already {run.status}"
    if run.status is ExportRunStatus.RUNNING and not takeover:
        age = heartbeat_age(run, utcnow())
        if age is not None and age.total_seconds() <= stale_after_seconds(ctx.settings):
            return "carried by another job"
    # The attempt number fences concurrent jobs: only one may start attempt N + 1.
    claimed = await store.claim_once(
        f"run:{run_id}:attempt:{run.attempt}", utcnow() + timedelta(days=7)
    )
    if not claimed:
        return "claimed by another job"
    try:
        done = await execute_run(ctx, run_id)
    except RunInterrupted:
        raise
    except REDIS_UNAVAILABLE as exc:
        # Redis only coordinates (rate limits, locks, events); the run is released with
        # its checkpoint and resumes once Redis answers again (a restart, a failover).
        raise TransientRunError(
            f"Redis did not answer ({type(exc).__name__}); the run resumes from its checkpoint"
        ) from exc
    except Exception as exc:
        # A bug or an outage we cannot classify: fail the run once, loudly, rather than
        # let the recovery sweep resume it forever. The message names no internals.
        log.exception("run_crashed", run_id=run_id)
        await fail_run(
            ctx,
            run_id,
            f"Unexpected error ({type(exc).__name__}); the run stopped. "
            f"See the worker logs for run {run_id}.",
        )
        return "crashed"
    return str(done.status) if done is not None else "missing"


async def carry_inline(ctx: RunContext, run_id: str, closing: Callable[[], bool]) -> None:
    """The in-process job: carry the run, retrying transient trouble with backoff here.

    ``closing()`` true: the process is shutting down, and the run is left resumable
    (the next start continues it) instead of retried or failed.
    """
    max_tries = ctx.settings.job_max_tries
    for attempt in range(1, max_tries + 1):
        try:
            await perform_run(ctx, run_id, takeover=True)
            return
        except RunStopped:
            return  # released: the next start of this process continues it
        except TransientRunError as exc:
            if closing():
                return
            delay = await after_transient_failure(ctx, run_id, attempt, max_tries, str(exc))
            if delay is None:
                return
            await asyncio.sleep(delay)


@dataclass(frozen=True, slots=True)
class RetryLater:
    """An attempt hit transient trouble, or its process is stopping: try again after
    ``delay`` seconds (0: at once, on another worker)."""

    delay: float
    error: RunInterrupted


async def carry_attempt(ctx: RunContext, run_id: str, attempt: int) -> str | RetryLater:
    """One attempt of a queued job (arq counts them): what happened, or when to retry."""
    try:
        return await perform_run(ctx, run_id)
    except RunStopped as exc:
        # Checkpointed and released with every acknowledged batch: another worker resumes.
        return RetryLater(0.0, exc)
    except TransientRunError as exc:
        max_tries = ctx.settings.job_max_tries
        delay = await after_transient_failure(ctx, run_id, attempt, max_tries, str(exc))
        if delay is None:
            return "failed"
        return RetryLater(delay, exc)


async def tick_forever(ctx: RunContext) -> None:
    """Every tick: recover orphaned runs, then start the runs the schedule makes due."""
    ticker = ScheduleTicker(ctx)
    interval = ctx.settings.schedule_tick_seconds
    while True:
        try:
            await recover_runs(ctx, stale_after_seconds(ctx.settings))
            await ticker.tick()
        except Exception:
            log.warning("tick_failed", exc_info=True)
        await asyncio.sleep(interval)
