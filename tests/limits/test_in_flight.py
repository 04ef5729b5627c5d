"""The concurrency cap of the shared limiter: at most ``max_requests_in_flight`` holders per
scope, in one process and across processes (two Redis clients stand for two workers); a
slot whose holder died comes back once its lease ends."""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager

import pytest

from service.coordination.in_flight import MemoryInFlight, RedisInFlight
from service.coordination.limiter import RateLimiters
from service.coordination.redis import RedisClient
from service.plugins import DestinationLimits

CAPPED = DestinationLimits(max_requests_in_flight=3)


class Holders:
    """Counts holders at once; each holds until the test lets go."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0
        self.release = asyncio.Event()
        self.entered = asyncio.Condition()

    async def hold(self, slot: AbstractAsyncContextManager[None]) -> None:
        async with slot:
            async with self.entered:
                self.now += 1
                self.peak = max(self.peak, self.now)
                self.entered.notify_all()
            await self.release.wait()
            self.now -= 1

    async def until(self, count: int) -> None:
        async with self.entered:
            await self.entered.wait_for(lambda: self.now >= count)


async def _cap_holds(slot_of: list[AbstractAsyncContextManager[None]]) -> Holders:
    holders = Holders()
    tasks = [asyncio.create_task(holders.hold(slot)) for slot in slot_of]
    await holders.until(min(3, len(slot_of)))
    # Every task that could enter has entered: the rest wait for a slot.
    await asyncio.sleep(0)
    assert holders.now == 3
    holders.release.set()
    await asyncio.gather(*tasks)
    return holders


async def test_the_in_process_cap_admits_n_holders_and_the_rest_in_turn() -> None:
    limiter = RateLimiters().for_key("capped", CAPPED)
    holders = await _cap_holds([limiter.in_flight("key-a") for _ in range(8)])
    assert holders.peak == 3


async def test_scopes_are_capped_apart() -> None:
    slots = MemoryInFlight(1)
    holders = Holders()
    tasks = [asyncio.create_task(holders.hold(slots.slot(s))) for s in ("a", "b", "c")]
    await holders.until(3)
    assert slots.held("a") == slots.held("b") == 1
    holders.release.set()
    await asyncio.gather(*tasks)


async def test_without_a_cap_nothing_is_held() -> None:
    limiter = RateLimiters().for_key("free", DestinationLimits())
    async with limiter.in_flight("any"), limiter.in_flight("any"):
        pass


async def test_two_workers_share_one_redis_cap(
    redis_db: RedisClient, second_redis_client: RedisClient
) -> None:
    first = RateLimiters(redis_db).for_key("capped", CAPPED)
    second = RateLimiters(second_redis_client).for_key("capped", CAPPED)
    slots = [(first if n % 2 else second).in_flight("key-a") for n in range(9)]
    holders = await _cap_holds(slots)
    assert holders.peak == 3
    assert await RedisInFlight(redis_db, "segport:ratelimit:capped:inflight:", 3).held("key-a") == 0


async def test_a_dead_holders_slot_comes_back_after_its_lease(redis_db: RedisClient) -> None:
    dying = RedisInFlight(redis_db, "test:inflight:", 1, lease_seconds=0.3)
    # A worker that dies mid-request: its renewal stops with it, nothing releases the slot.
    entered = asyncio.Event()

    async def die_holding() -> None:
        async with dying.slot("k"):
            entered.set()
            await asyncio.Event().wait()

    holder = asyncio.create_task(die_holding())
    await entered.wait()
    # Simulate the process vanishing: stop its renewer without running the release.
    for task in asyncio.all_tasks():
        if task.get_coro().__qualname__.endswith("_renew_while_held"):  # type: ignore[union-attr]
            task.cancel()
    survivor = RedisInFlight(redis_db, "test:inflight:", 1, lease_seconds=0.3)
    assert await survivor.held("k") == 1
    async with asyncio.timeout(5):
        async with survivor.slot("k"):
            assert await survivor.held("k") == 1
    holder.cancel()
    with pytest.raises(asyncio.CancelledError):
        await holder


async def test_a_held_slot_is_renewed_while_its_request_lasts(redis_db: RedisClient) -> None:
    slots = RedisInFlight(redis_db, "test:renew:", 1, lease_seconds=0.3)
    async with slots.slot("k"):
        await asyncio.sleep(0.9)  # three leases: renewed, never taken back
        assert await slots.held("k") == 1
    assert await slots.held("k") == 0


def test_a_cap_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="max_requests_in_flight must be at least 1"):
        MemoryInFlight(0)
