"""The rate limiter contract, run against the in-process and the Redis adapter."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

import pytest
from structlog.testing import capture_logs

from service.coordination.limiter import (
    ARRIVAL_MARGIN,
    Clock,
    MemoryRateLimiter,
    RateLimiters,
    RedisRateLimiter,
    Sleep,
    WaitObserver,
    WindowRule,
)
from service.coordination.redis import RedisClient
from service.plugins.api import DestinationLimits, RateLimiter

from .conftest import FakeClock

MEASUREMENT_SLACK = 0.05
"""Timestamps are taken when ``acquire`` returns, a little after the admission itself
(a Redis round trip, event-loop scheduling); the window check allows for that much."""


class LimiterFactory(Protocol):
    """Makes the adapter under test (key ``toy``) with the given limits and test doubles."""

    def __call__(
        self,
        limits: DestinationLimits,
        *,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
        on_wait: WaitObserver | None = None,
    ) -> RateLimiter: ...


@pytest.fixture(params=["memory", "redis"])
def make_limiter(request: pytest.FixtureRequest) -> LimiterFactory:
    if request.param == "memory":

        def memory(
            limits: DestinationLimits,
            *,
            clock: Clock | None = None,
            sleep: Sleep | None = None,
            on_wait: WaitObserver | None = None,
        ) -> RateLimiter:
            return MemoryRateLimiter("toy", limits, clock=clock, sleep=sleep, on_wait=on_wait)

        return memory
    redis: RedisClient = request.getfixturevalue("redis_db")

    def shared(
        limits: DestinationLimits,
        *,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
        on_wait: WaitObserver | None = None,
    ) -> RateLimiter:
        return RedisRateLimiter(redis, "toy", limits, clock=clock, sleep=sleep, on_wait=on_wait)

    return shared


def assert_at_most_per_window(stamps: list[float], count: int) -> None:
    stamps = sorted(stamps)
    for i in range(len(stamps) - count):
        span = stamps[i + count] - stamps[i]
        assert span >= 1.0 - MEASUREMENT_SLACK, (
            f"{count + 1} admissions within {span:.3f}s starting at #{i}"
        )


async def test_never_admits_more_than_n_in_any_one_second_window(
    make_limiter: LimiterFactory,
) -> None:
    limiter = make_limiter(DestinationLimits(requests_per_second=5))
    stamps: list[float] = []

    async def caller(n: int) -> None:
        for _ in range(n):
            await limiter.acquire()
            stamps.append(time.time())

    await asyncio.gather(caller(4), caller(4), caller(3))

    assert len(stamps) == 11
    assert_at_most_per_window(stamps, 5)


async def test_window_slides_instead_of_resetting_on_the_second_boundary(
    make_limiter: LimiterFactory,
) -> None:
    # Two admissions at x.9 fill the window; a fixed window would admit a third at
    # (x+1).0, the sliding log makes it wait until (x+1).9 plus the arrival margin.
    clock = FakeClock(datetime(2030, 1, 1, 12, 0, 0, 900_000, tzinfo=UTC))
    limiter = make_limiter(DestinationLimits(requests_per_second=2), clock=clock, sleep=clock.sleep)
    assert await limiter.acquire() == 0.0
    assert await limiter.acquire() == 0.0
    clock.now += 0.1

    waited = await limiter.acquire()

    assert waited == pytest.approx(0.9 + ARRIVAL_MARGIN)
    assert datetime.fromtimestamp(clock.now, UTC) == datetime(
        2030, 1, 1, 12, 0, 1, 900_000, tzinfo=UTC
    ) + timedelta(seconds=ARRIVAL_MARGIN)


async def test_spent_daily_quota_waits_until_utc_midnight_and_says_so(
    make_limiter: LimiterFactory,
) -> None:
    clock = FakeClock(datetime(2030, 1, 1, 23, 59, 0, tzinfo=UTC))
    limiter = make_limiter(DestinationLimits(requests_per_day=3), clock=clock, sleep=clock.sleep)
    for _ in range(3):
        assert await limiter.acquire() == 0.0

    with capture_logs() as logs:
        waited = await limiter.acquire()

    assert waited == pytest.approx(60.0)
    assert datetime.fromtimestamp(clock.now, UTC) == datetime(2030, 1, 2, tzinfo=UTC)
    quota_lines = [line for line in logs if line["event"] == "rate_limit_daily_quota_spent"]
    assert len(quota_lines) == 1, "one clear line per wait, not one per slice slept"
    assert quota_lines[0]["destination"] == "toy"
    assert quota_lines[0]["resume_at"] == "2030-01-02T00:00:00+00:00"
    # The new day has a fresh quota: two more go through at once (one was used above).
    assert await limiter.acquire() == 0.0
    assert await limiter.acquire() == 0.0


async def test_long_waits_are_slept_in_slices_of_at_most_a_minute(
    make_limiter: LimiterFactory,
) -> None:
    clock = FakeClock(datetime(2030, 1, 1, 22, 0, 0, tzinfo=UTC))
    limiter = make_limiter(DestinationLimits(requests_per_day=1), clock=clock, sleep=clock.sleep)
    await limiter.acquire()

    waited = await limiter.acquire()

    assert waited == pytest.approx(2 * 3600)
    assert max(clock.slept) <= 60.0


async def test_pause_until_holds_every_request_back_until_the_given_time(
    make_limiter: LimiterFactory,
) -> None:
    clock = FakeClock(datetime(2030, 5, 1, 10, 0, 0, tzinfo=UTC))
    limiter = make_limiter(DestinationLimits(requests_per_second=4), clock=clock, sleep=clock.sleep)
    await limiter.pause_until(
        datetime(2030, 5, 1, 10, 0, 30, tzinfo=UTC), "quota_exceeded: Limit Exceeded"
    )
    # An earlier pause never shortens a later one.
    await limiter.pause_until(datetime(2030, 5, 1, 10, 0, 5, tzinfo=UTC), "throttled")

    with capture_logs() as logs:
        waited = await limiter.acquire()

    assert waited == pytest.approx(30.0)
    paused = [line for line in logs if line["event"] == "rate_limit_paused"]
    assert paused
    assert paused[0]["reason"] == "quota_exceeded: Limit Exceeded"


async def test_unlimited_destination_never_waits(make_limiter: LimiterFactory) -> None:
    clock = FakeClock(datetime(2030, 1, 1, tzinfo=UTC))
    limiter = make_limiter(DestinationLimits(), clock=clock, sleep=clock.sleep)
    waits = [await limiter.acquire() for _ in range(50)]
    assert set(waits) == {0.0}
    assert clock.slept == []


async def test_wait_observer_hears_every_admission(make_limiter: LimiterFactory) -> None:
    heard: list[tuple[str, float]] = []
    clock = FakeClock(datetime(2030, 1, 1, tzinfo=UTC))
    limiter = make_limiter(
        DestinationLimits(requests_per_second=1),
        clock=clock,
        sleep=clock.sleep,
        on_wait=lambda key, seconds: heard.append((key, seconds)),
    )
    await limiter.acquire()
    await limiter.acquire()
    assert heard == [("toy", 0.0), ("toy", pytest.approx(1.0 + ARRIVAL_MARGIN))]


# -- Redis only: one budget for every process -------------------------------------


async def test_two_processes_share_one_redis_budget(
    redis_db: RedisClient, second_redis_client: RedisClient
) -> None:
    limits = DestinationLimits(requests_per_second=3)
    worker_a = RedisRateLimiter(redis_db, "constant_contact", limits)
    worker_b = RedisRateLimiter(second_redis_client, "constant_contact", limits)
    stamps: list[float] = []

    async def caller(limiter: RateLimiter, n: int) -> None:
        for _ in range(n):
            await limiter.acquire()
            stamps.append(time.time())

    await asyncio.gather(caller(worker_a, 4), caller(worker_b, 3))

    assert len(stamps) == 7
    assert_at_most_per_window(stamps, 3)


async def test_pause_set_by_one_process_is_honoured_by_another(
    redis_db: RedisClient, second_redis_client: RedisClient
) -> None:
    clock = FakeClock(datetime(2030, 5, 1, 10, 0, 0, tzinfo=UTC))
    limits = DestinationLimits(requests_per_second=4)
    worker_a = RedisRateLimiter(redis_db, "cc", limits, clock=clock, sleep=clock.sleep)
    worker_b = RedisRateLimiter(second_redis_client, "cc", limits, clock=clock, sleep=clock.sleep)

    await worker_a.pause_until(clock_time(clock) + timedelta(minutes=5), "quota_exceeded")

    assert await worker_b.acquire() == pytest.approx(300.0)


async def test_daily_counter_is_keyed_by_the_utc_date_and_expires_after_the_day(
    redis_db: RedisClient,
) -> None:
    clock = FakeClock(datetime(2028, 2, 29, 23, 0, 0, tzinfo=UTC))
    limiter = RedisRateLimiter(
        redis_db, "cc", DestinationLimits(requests_per_day=10), clock=clock, sleep=clock.sleep
    )
    for _ in range(4):
        await limiter.acquire()

    key = "segport:ratelimit:cc:day:2028-02-29"
    count = await redis_db.get(key)
    assert count is not None
    assert int(count) == 4
    ttl = await redis_db.ttl(key)
    assert 3600 < ttl <= 3600 + 3600, "expires an hour after the day ends, not before"


# -- the registry and the window rule ---------------------------------------------


class _Toy:
    key = "toy"
    limits = DestinationLimits(requests_per_second=4, requests_per_day=10_000)


async def test_registry_gives_one_shared_limiter_per_destination_key(redis_db: RedisClient) -> None:
    memory = RateLimiters()
    shared = RateLimiters(redis_db)
    toy = _Toy()

    assert memory.for_destination(toy) is memory.for_destination(toy)  # type: ignore[arg-type]
    assert isinstance(memory.for_destination(toy), MemoryRateLimiter)  # type: ignore[arg-type]
    assert isinstance(shared.for_destination(toy), RedisRateLimiter)  # type: ignore[arg-type]
    assert shared.shared
    assert not memory.shared


@pytest.mark.parametrize(
    ("rate", "rule"),
    [
        (4, WindowRule(4, 1.0 + ARRIVAL_MARGIN)),
        (2.5, WindowRule(2, 1.0 + ARRIVAL_MARGIN)),
        (0.5, WindowRule(1, 2.0 + ARRIVAL_MARGIN)),
        (None, None),
    ],
)
def test_declared_rate_becomes_a_window_never_above_it(
    rate: float | None, rule: WindowRule | None
) -> None:
    assert WindowRule.from_rate(rate) == rule


def test_nonpositive_rate_is_refused_naming_the_value() -> None:
    with pytest.raises(ValueError, match="-1"):
        WindowRule.from_rate(-1)


def clock_time(clock: FakeClock) -> datetime:
    return datetime.fromtimestamp(clock.now, UTC)
