"""Running jobs and the schedule inside ``segport serve`` when there is no Redis."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from service.coordination.queue import InlineRunQueue
from service.runs.context import RunContext
from service.runs.jobs import tick_forever
from service.runs.recovery import continue_unfinished_runs


@asynccontextmanager
async def in_process_runs(ctx: RunContext) -> AsyncIterator[bool]:
    """While open, this process carries runs and ticks the schedule, if its queue is inline.

    Yields whether it does (False in distributed mode, where ``segport worker``
    processes do both). Unfinished runs of a previous process resume at once.
    """
    if not isinstance(ctx.queue, InlineRunQueue):
        yield False
        return
    await ctx.queue.start()
    await continue_unfinished_runs(ctx)
    ticker = asyncio.create_task(tick_forever(ctx), name="segport-schedule-tick")
    try:
        yield True
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
