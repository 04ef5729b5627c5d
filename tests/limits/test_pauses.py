"""Pauses of the shared limiter, on both adapters: seen, said to a waiting run, and lifted
(waking the runs that wait on them, in this process and, through Redis, in another)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from service.coordination.limiter import (
    MemoryRateLimiter,
    RedisRateLimiter,
    ReportingLimiter,
)
from service.coordination.redis import RedisClient
from service.plugins.api import DestinationLimits

LIMITS = DestinationLimits(requests_per_second=100, requests_per_day=1000)
REASON = "the daily quota is spent"


class Reporter:
    def __init__(self) -> None:
        self.waits: list[tuple[str, datetime | None]] = []
        self.told = asyncio.Event()

    async def waiting(self, reason: str, until: datetime | None = None) -> None:
        self.waits.append((reason, until))
        self.told.set()

    def cancelled(self) -> bool:
        return False

    async def destination_progress(self, processed: int, total: int) -> None:
        return None


@pytest.fixture(params=["memory", "redis"])
def limiters(
    request: pytest.FixtureRequest,
) -> tuple[MemoryRateLimiter | RedisRateLimiter, MemoryRateLimiter | RedisRateLimiter]:
    """The limiter a run waits on, and the one an admin lifts the pause with: the same
    object in one process, two processes' limiters on one Redis."""
    if request.param == "memory":
        memory = MemoryRateLimiter("toy", LIMITS)
        return memory, memory
    redis: RedisClient = request.getfixturevalue("redis_db")
    other: RedisClient = request.getfixturevalue("second_redis_client")
    return RedisRateLimiter(redis, "toy", LIMITS), RedisRateLimiter(other, "toy", LIMITS)


async def test_a_run_waiting_on_a_pause_is_told_why_and_wakes_when_it_is_lifted(
    limiters: tuple[MemoryRateLimiter | RedisRateLimiter, MemoryRateLimiter | RedisRateLimiter],
) -> None:
    waiting_side, admin_side = limiters
    until = (datetime.now(UTC) + timedelta(hours=3)).replace(microsecond=0)
    await waiting_side.pause_until(until, REASON)
    reporter = Reporter()
    run_view = ReportingLimiter(waiting_side, reporter)

    acquire = asyncio.create_task(run_view.acquire())
    await asyncio.wait_for(reporter.told.wait(), 10)

    assert not acquire.done()
    [(reason, resumes)] = reporter.waits
    assert reason == REASON
    assert resumes is not None
    assert abs((resumes - until).total_seconds()) < 2
    pause = await admin_side.pause()
    assert pause is not None
    assert (pause.key, pause.reason) == ("toy", REASON)
    assert abs((pause.until - until).total_seconds()) < 1

    lifted = await admin_side.lift_pause()

    assert lifted == pause
    await asyncio.wait_for(acquire, 10)  # woken: within the pause poll, never hours
    assert await admin_side.pause() is None
    assert await waiting_side.pause() is None
    assert await admin_side.lift_pause() is None


async def test_the_daily_limit_is_said_on_the_run_with_when_it_resets() -> None:
    clock_now = datetime(2026, 5, 4, 23, 59, 0, tzinfo=UTC).timestamp()
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        nonlocal clock_now
        slept.append(seconds)
        clock_now += seconds

    limiter = MemoryRateLimiter(
        "toy", DestinationLimits(requests_per_day=1), clock=lambda: clock_now, sleep=sleep
    )
    reporter = Reporter()
    run_view = ReportingLimiter(limiter, reporter)
    await run_view.acquire()

    await run_view.acquire()  # the day's one request is spent: waits for 00:00 UTC

    [(reason, resumes)] = reporter.waits
    assert reason.startswith("The daily limit of 1 requests to toy is used up")
    assert resumes == datetime(2026, 5, 5, tzinfo=UTC)
    assert sum(slept) == pytest.approx(60)
