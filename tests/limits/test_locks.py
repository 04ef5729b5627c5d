"""Named locks, in-process and in Redis: exclusive, released, expiring when abandoned."""

from __future__ import annotations

import asyncio

import pytest

from service.coordination.locks import Locks, LockTimeout, MemoryLocks, RedisLocks
from service.coordination.redis import RedisClient


@pytest.fixture(params=["memory", "redis"])
def two_holders(request: pytest.FixtureRequest) -> tuple[Locks, Locks]:
    """Two lock clients that must exclude each other (two tasks, or two processes)."""
    if request.param == "memory":
        locks = MemoryLocks()
        return locks, locks
    first: RedisClient = request.getfixturevalue("redis_db")
    second: RedisClient = request.getfixturevalue("second_redis_client")
    return RedisLocks(first), RedisLocks(second)


async def test_lock_is_exclusive_between_holders(two_holders: tuple[Locks, Locks]) -> None:
    events: list[str] = []

    async def critical(locks: Locks, who: str) -> None:
        async with locks.lock("refresh:conn1", 5.0):
            events.append(f"enter {who}")
            await asyncio.sleep(0.1)
            events.append(f"exit {who}")

    await asyncio.gather(critical(two_holders[0], "a"), critical(two_holders[1], "b"))

    assert events in (
        ["enter a", "exit a", "enter b", "exit b"],
        ["enter b", "exit b", "enter a", "exit a"],
    )


async def test_different_names_do_not_block_each_other(two_holders: tuple[Locks, Locks]) -> None:
    async with (
        two_holders[0].lock("refresh:one", 5.0),
        two_holders[1].lock("refresh:two", 5.0, wait=1.0),
    ):
        pass


async def test_busy_lock_gives_up_after_wait_naming_the_lock(
    two_holders: tuple[Locks, Locks],
) -> None:
    async with two_holders[0].lock("refresh:busy", 5.0):
        with pytest.raises(LockTimeout, match="refresh:busy"):
            async with two_holders[1].lock("refresh:busy", 5.0, wait=0.2):
                pass


async def test_lock_is_free_again_after_an_error_inside(two_holders: tuple[Locks, Locks]) -> None:
    with pytest.raises(RuntimeError):
        async with two_holders[0].lock("refresh:err", 5.0):
            raise RuntimeError("boom")
    async with two_holders[1].lock("refresh:err", 5.0, wait=1.0):
        pass


async def test_redis_lock_abandoned_by_a_crashed_holder_expires(
    redis_db: RedisClient, second_redis_client: RedisClient
) -> None:
    crashed = RedisLocks(redis_db).lock("refresh:crash", 0.3)
    await crashed.__aenter__()  # never exited: the process "died" holding it

    async with RedisLocks(second_redis_client).lock("refresh:crash", 5.0, wait=5.0):
        assert await second_redis_client.exists("segport:lock:refresh:crash") == 1


async def test_memory_locks_forget_names_nobody_holds() -> None:
    locks = MemoryLocks()
    async with locks.lock("refresh:x"):
        pass
    assert locks._locks == {}
