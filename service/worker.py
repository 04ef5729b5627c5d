"""The run job, and ``segport worker``: an arq worker that carries runs and ticks the schedule.

A job may run more than once (a crash, a SIGTERM, a retry), so it is
idempotent: a job for a finished run does nothing, a job for a RUNNING run
resumes from its checkpoint, and two jobs never carry one run at once (a job
takes a run only when no other job's heartbeat is fresh, and claims the run's
attempt number once in the store).

Workers also tick the schedule and recover runs whose job died (no heartbeat
for three heartbeat periods), every ``SEGPORT_SCHEDULE_TICK_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Iterable
from contextlib import AsyncExitStack
from datetime import timedelta
from types import ModuleType
from typing import TYPE_CHECKING, Any

import structlog

from service.coordination.queue import JOB_FUNCTION, recover_runs
from service.domain import ExportRunStatus, utcnow
from service.runs.pipeline import (
    TransientRunError,
    execute_run,
    fail_run,
    heartbeat_age,
    note_retry,
)
from service.settings import Settings

if TYPE_CHECKING:
    from service.core import Services

log = structlog.get_logger(__name__)

STALE_HEARTBEATS = 3
"""A run whose job has not written for this many heartbeat periods is taken over."""


def stale_after_seconds(settings: Settings) -> float:
    return STALE_HEARTBEATS * settings.run_heartbeat_seconds


def retry_delay(attempt: int, base: float) -> float:
    """Seconds before attempt ``attempt + 1``: exponential with jitter, at most five minutes."""
    delay: float = min(300.0, base * 2 ** (attempt - 1))
    return delay * random.uniform(0.8, 1.2)


async def after_transient_failure(
    services: Services, run_id: str, attempt: int, max_tries: int, error: str
) -> float | None:
    """What a transient failure of attempt ``attempt`` means for the run.

    The seconds to wait before the next attempt, with the run saying so (a failure that
    will be retried reads differently from a permanent one); or None after the last
    attempt, when the run has failed for good (and admins were notified).
    """
    if attempt >= max_tries:
        await fail_run(services, run_id, f"Gave up after {attempt} attempts: {error}")
        return None
    delay = retry_delay(attempt, services.settings.job_retry_base_seconds)
    log.info("run_retrying", run_id=run_id, attempt=attempt, error=error)
    await note_retry(
        services,
        run_id,
        f"Attempt {attempt} of {max_tries} failed and will be retried in about "
        f"{max(1, round(delay))} s: {error}",
    )
    return delay


async def perform_run(services: Services, run_id: str, *, takeover: bool = False) -> str:
    """Carry the run if this job may; returns what happened (for the job's result)."""
    store = services.store
    run = await store.get_run(run_id)
    if run is None:
        return "missing"
    if run.status.is_terminal:
        return f"already {run.status}"
    if run.status is ExportRunStatus.RUNNING and not takeover:
        age = heartbeat_age(run, utcnow())
        if age is not None and age.total_seconds() <= stale_after_seconds(services.settings):
            return "carried by another job"
    # The attempt number fences concurrent jobs: only one may start attempt N + 1.
    claimed = await store.claim_once(
        f"run:{run_id}:attempt:{run.attempt}", utcnow() + timedelta(days=7)
    )
    if not claimed:
        return "claimed by another job"
    try:
        done = await execute_run(services, run_id)
    except TransientRunError:
        raise
    except Exception as exc:
        # A bug or an outage we cannot classify: fail the run once, loudly, rather than
        # let the recovery sweep resume it forever. The message names no internals.
        log.exception("run_crashed", run_id=run_id)
        await fail_run(
            services,
            run_id,
            f"Unexpected error ({type(exc).__name__}); the run stopped. "
            f"See the worker logs for run {run_id}.",
        )
        return "crashed"
    return str(done.status) if done is not None else "missing"


# -- arq ---------------------------------------------------------------------------------------


async def run_export(ctx: dict[str, Any], run_id: str) -> str:
    """The arq job: carry one run; retry transient trouble with backoff, then fail it."""
    from arq import Retry

    services: Services = ctx["services"]
    job_try: int = ctx.get("job_try", 1)
    try:
        return await perform_run(services, run_id)
    except TransientRunError as exc:
        max_tries = services.settings.job_max_tries
        delay = await after_transient_failure(services, run_id, job_try, max_tries, str(exc))
        if delay is None:
            return "failed"
        raise Retry(defer=delay) from exc


async def _startup(ctx: dict[str, Any]) -> None:
    from service.core import open_services

    settings: Settings = ctx["settings"]
    stack = AsyncExitStack()
    services = await stack.enter_async_context(
        open_services(
            settings,
            extra_plugins=ctx.get("extra_plugins", ()),
            load_entry_points=ctx.get("load_entry_points", True),
        )
    )
    ctx["stack"] = stack
    ctx["services"] = services
    ctx["ticker"] = asyncio.create_task(tick_forever(services))
    from service.observability.metrics import start_worker_metrics_server

    ctx["metrics_server"] = start_worker_metrics_server(
        settings.worker_metrics_port, services.metrics
    )
    ctx["metrics_refresh"] = asyncio.create_task(services.metrics.refresh_forever(15.0))


async def _shutdown(ctx: dict[str, Any]) -> None:
    for name in ("ticker", "metrics_refresh"):
        task: asyncio.Task[None] | None = ctx.get(name)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    metrics_server = ctx.get("metrics_server")
    if metrics_server is not None:
        metrics_server.shutdown()
    stack: AsyncExitStack | None = ctx.get("stack")
    if stack is not None:
        await stack.aclose()


async def tick_forever(services: Services) -> None:
    """Every tick: recover orphaned runs, then start the runs the schedule makes due."""
    from service.runs.schedule import ScheduleTicker

    ticker = ScheduleTicker(services)
    interval = services.settings.schedule_tick_seconds
    while True:
        try:
            await recover_runs(services, stale_after_seconds(services.settings))
            await ticker.tick()
        except Exception:
            log.warning("tick_failed", exc_info=True)
        await asyncio.sleep(interval)


def worker_settings(
    settings: Settings,
    *,
    extra_plugins: Iterable[ModuleType | object] = (),
    load_entry_points: bool = True,
) -> dict[str, Any]:
    """Keyword arguments for :class:`arq.worker.Worker` (what a ``WorkerSettings`` class holds).

    ``extra_plugins`` / ``load_entry_points`` are handed to :func:`service.core.open_services`
    (embedding and tests register destinations without installing them).
    """
    from arq.connections import RedisSettings
    from arq.worker import func

    if not settings.redis_url:
        raise ValueError("segport worker needs SEGPORT_REDIS_URL (the arq queue lives in Redis)")
    return {
        "functions": [func(run_export, name=JOB_FUNCTION)],
        "redis_settings": RedisSettings.from_dsn(settings.redis_url),
        "on_startup": _startup,
        "on_shutdown": _shutdown,
        "ctx": {
            "settings": settings,
            "extra_plugins": tuple(extra_plugins),
            "load_entry_points": load_entry_points,
        },
        "allow_abort_jobs": True,
        "job_timeout": settings.job_timeout_seconds,
        "max_tries": settings.job_max_tries,
        "job_completion_wait": settings.job_completion_wait_seconds,
        "max_jobs": settings.worker_concurrency,
        "keep_result": 3600,
        "poll_delay": 0.2,
    }


def run_worker(
    settings: Settings,
    *,
    extra_plugins: Iterable[ModuleType | object] = (),
    load_entry_points: bool = True,
) -> None:
    """``segport worker``: serve run jobs until SIGTERM/SIGINT (blocking).

    On SIGTERM arq stops taking jobs, waits ``job_completion_wait`` for running
    ones, then cancels them: a cancelled run checkpoints, releases itself and
    stays RUNNING, and arq's retry (or another worker's recovery) resumes it.
    """
    from arq.worker import Worker

    worker = Worker(
        **worker_settings(
            settings, extra_plugins=extra_plugins, load_entry_points=load_entry_points
        )
    )
    worker.run()
