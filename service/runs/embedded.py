"""Running jobs and the schedule inside ``segport serve`` when there is no Redis."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from service.coordination.queue import InlineRunQueue

if TYPE_CHECKING:
    from service.core import Services


@asynccontextmanager
async def in_process_runs(services: Services) -> AsyncIterator[bool]:
    """While open, this process carries runs and ticks the schedule, if its queue is inline.

    Yields whether it does (False in distributed mode, where ``segport worker``
    processes do both). Unfinished runs of a previous process resume at once.
    """
    if not isinstance(services.queue, InlineRunQueue):
        yield False
        return
    from service.worker import tick_forever

    await services.queue.start(services)
    ticker = asyncio.create_task(tick_forever(services), name="segport-schedule-tick")
    try:
        yield True
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
