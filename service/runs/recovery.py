"""Giving unfinished runs a job again: the heartbeat rule and the recovery sweep.

A job on a run writes its heartbeat every ``SEGPORT_RUN_HEARTBEAT_SECONDS``;
a RUNNING run whose heartbeat is older than :data:`STALE_HEARTBEATS` periods
(or that its job released) has no live job, and any process may resume it.
"""

from __future__ import annotations

import contextlib

from service.domain import ExportRunStatus, utcnow
from service.runs.checkpoint import heartbeat_age
from service.runs.context import RunContext, RunSettings

STALE_HEARTBEATS = 3
"""A run whose job has not written for this many heartbeat periods is taken over."""


def stale_after_seconds(settings: RunSettings) -> float:
    return STALE_HEARTBEATS * settings.run_heartbeat_seconds


async def recover_runs(ctx: RunContext, stale_after_seconds: float) -> list[str]:
    """Give every unfinished run a job: QUEUED ones whose job may be lost, and RUNNING ones
    whose job stopped (released, or no heartbeat for ``stale_after_seconds``).

    Safe to call from any number of processes at once: enqueueing is idempotent
    and a job only takes a run it can claim. Returns the RUNNING runs resumed.
    """
    now = utcnow()
    recovered: list[str] = []
    for run in await ctx.store.list_active_runs():
        with contextlib.suppress(Exception):
            if run.status is ExportRunStatus.QUEUED:
                await ctx.queue.enqueue(run.id)
                continue
            age = heartbeat_age(run, now)
            if age is None or age.total_seconds() > stale_after_seconds:
                await ctx.queue.resume(run.id, run.attempt)
                recovered.append(run.id)
    return recovered


async def continue_unfinished_runs(ctx: RunContext) -> None:
    """Give every unfinished run a job at once, heartbeat or not.

    For an embedded process starting up: it is the only one that could be
    carrying runs, so the runs a previous process left QUEUED or RUNNING are
    its own to continue.
    """
    for run in await ctx.store.list_active_runs():
        await ctx.queue.enqueue(run.id)
