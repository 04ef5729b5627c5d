"""``segport worker``: an arq worker that carries runs and ticks the schedule.

The job itself (idempotent, resumable, retried with backoff) is
:mod:`service.runs.jobs`; this module is arq's side of it: the worker's
settings, its start-up (the service's parts, the schedule tick, the metrics
port) and shutdown. Workers also recover runs whose job died (no heartbeat
for three heartbeat periods) or that could not be enqueued, every
``SEGPORT_SCHEDULE_TICK_SECONDS``; they outlive Redis restarts
(:class:`SegportWorker`).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
from collections.abc import Iterable
from contextlib import AsyncExitStack
from types import ModuleType
from typing import Any

import structlog
from arq import Retry
from arq.connections import RedisSettings
from arq.worker import Worker, func

from service.coordination.queue import JOB_FUNCTION
from service.coordination.redis import REDIS_UNAVAILABLE
from service.core import open_services
from service.observability.metrics import start_worker_metrics_server
from service.runs.context import RunContext
from service.runs.jobs import RetryLater, carry_attempt, tick_forever
from service.settings import Settings

log = structlog.get_logger(__name__)

POLL_ERRORS: tuple[type[Exception], ...] = (*REDIS_UNAVAILABLE, OSError)
"""What a poll of arq's queue raises while Redis is away (sockets fail as OSError too)."""


async def run_export(ctx: dict[str, Any], run_id: str) -> str:
    """The arq job: carry one run; retry transient trouble with backoff, then fail it."""
    runs: RunContext = ctx["runs"]
    outcome = await carry_attempt(runs, run_id, ctx.get("job_try", 1))
    if isinstance(outcome, RetryLater):
        raise Retry(defer=outcome.delay) from outcome.error
    return outcome


async def _startup(ctx: dict[str, Any]) -> None:
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
    ctx["runs"] = services.run_context
    ctx["ticker"] = asyncio.create_task(tick_forever(services.run_context))
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


RECONNECT_FIRST_DELAY_SECONDS = 0.5
RECONNECT_MAX_DELAY_SECONDS = 30.0


class SegportWorker(Worker):
    """arq's worker, made to outlive Redis restarts and to stop its runs cleanly.

    **Redis away.** arq's polling loop ends the process at the first Redis error (a
    restart, a failover). Here a poll that fails waits for Redis with exponential
    backoff (from :data:`RECONNECT_FIRST_DELAY_SECONDS` to
    :data:`RECONNECT_MAX_DELAY_SECONDS`, with jitter) and polls again once it answers;
    running jobs go on meanwhile (runs keep their state in the store) and the recovery
    sweep gives a job to every run that lost one.

    **A stop signal.** With a completion wait (``SEGPORT_JOB_COMPLETION_WAIT_SECONDS``)
    arq stops taking jobs and waits that long before cancelling the running ones. A run
    job cannot end in that time, but it can stop cleanly: ``stopping`` makes it start no
    more batches, wait for the answers of those already sent, checkpoint them and
    release the run, so the worker that resumes it sends nothing the destination took.
    """

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
        except POLL_ERRORS as exc:
            await self._wait_for_redis(exc)

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        try:
            await super().start_jobs(job_ids)
        except POLL_ERRORS:
            # arq took a job slot for the job it was starting when Redis went away, and
            # gives it back only when that job ends: give it back here, or the worker
            # would run out of slots after a few restarts.
            self._release_sem_dec_counter_on_complete()
            raise

    async def _wait_for_redis(self, error: Exception) -> None:
        attempt = 0
        while True:
            attempt += 1
            delay = min(
                RECONNECT_MAX_DELAY_SECONDS, RECONNECT_FIRST_DELAY_SECONDS * 2 ** (attempt - 1)
            )
            delay *= random.uniform(0.8, 1.2)
            log.warning(
                "worker_redis_unavailable",
                attempt=attempt,
                retry_in_seconds=round(delay, 2),
                error=f"{type(error).__name__}: {error}",
            )
            await asyncio.sleep(delay)
            try:
                await self.pool.ping()
            except POLL_ERRORS as again:
                error = again
                continue
            log.info("worker_redis_reconnected", attempts=attempt)
            return

    def handle_sig_wait_for_completion(self, signum: signal.Signals) -> None:
        runs = self.ctx.get("runs")
        if isinstance(runs, RunContext):
            runs.stopping.set()
        super().handle_sig_wait_for_completion(signum)


def run_worker(
    settings: Settings,
    *,
    extra_plugins: Iterable[ModuleType | object] = (),
    load_entry_points: bool = True,
) -> None:
    """``segport worker``: serve run jobs until SIGTERM/SIGINT (blocking).

    On SIGTERM arq stops taking jobs and waits ``job_completion_wait`` for running
    ones; each run commits the batches it has under way and stops, RUNNING and
    released (see :class:`SegportWorker`), and arq's retry (or another worker's
    recovery) resumes it. Jobs still going after the wait are cancelled: they
    checkpoint what is committed and release their run too.
    """
    worker = SegportWorker(
        **worker_settings(
            settings, extra_plugins=extra_plugins, load_entry_points=load_entry_points
        )
    )
    worker.run()
