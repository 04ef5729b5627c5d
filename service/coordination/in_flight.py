"""Concurrency caps: at most N requests in flight per scope (e.g. per API key).

Some destinations limit how many requests are open at once rather than how many
are sent per second ("10 simultaneous connections per API key"). A
destination declares ``DestinationLimits.max_requests_in_flight`` and wraps each
request in ``ctx.rate_limiter.in_flight(scope)``. Two adapters:

- :class:`MemoryInFlight` (embedded mode): one counter and a condition per scope;
- :class:`RedisInFlight` (distributed mode): a semaphore shared by every worker,
  a sorted set of holders scored by their lease's end. A holder renews its lease
  while its request lasts; a worker that dies stops renewing, and its slot is
  taken back once the lease ends, so a crash never leaks a slot for good.

Waiting for a Redis slot polls with a growing interval (a few milliseconds at
first): slots free up as fast as requests finish, and a pub/sub wake-up would
cost a connection per waiter.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress

from service.coordination.redis import RedisClient

Sleep = Callable[[float], Awaitable[None]]

DEFAULT_LEASE_SECONDS = 30.0
"""How long a Redis slot outlives a holder that stopped renewing it (a dead worker)."""
FIRST_POLL_SECONDS = 0.005
MAX_POLL_SECONDS = 0.1


class MemoryInFlight:
    """At most ``limit`` holders per scope in this process."""

    def __init__(self, limit: int | None) -> None:
        if limit is not None and limit < 1:
            raise ValueError(f"max_requests_in_flight must be at least 1, got {limit!r}")
        self.limit = limit
        self._held: dict[str, int] = {}
        self._freed: dict[str, asyncio.Condition] = {}
        self.peak: dict[str, int] = {}
        """The most slots of each scope ever held at once (for tests and benchmarks)."""

    def held(self, scope: str = "") -> int:
        return self._held.get(scope, 0)

    @asynccontextmanager
    async def slot(self, scope: str = "") -> AsyncIterator[None]:
        if self.limit is None:
            yield
            return
        freed = self._freed.setdefault(scope, asyncio.Condition())
        async with freed:
            await freed.wait_for(lambda: self._held.get(scope, 0) < (self.limit or 0))
            self._held[scope] = held = self._held.get(scope, 0) + 1
            self.peak[scope] = max(self.peak.get(scope, 0), held)
        try:
            yield
        finally:
            async with freed:
                self._held[scope] -= 1
                freed.notify(1)


# KEYS: 1 holders zset. ARGV: 1 limit, 2 holder id, 3 lease seconds.
# Uses the Redis server's clock, the same for every worker.
_TAKE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tostring(now))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
local lease = tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], tostring(now + lease), ARGV[2])
redis.call('PEXPIRE', KEYS[1], math.ceil(lease * 1000) + 1000)
return 1
"""

# KEYS: 1 holders zset. ARGV: 1 holder id, 2 lease seconds. Renews only a slot still held.
_RENEW_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local lease = tonumber(ARGV[2])
local renewed = redis.call('ZADD', KEYS[1], 'XX', 'CH', tostring(now + lease), ARGV[1])
redis.call('PEXPIRE', KEYS[1], math.ceil(lease * 1000) + 1000)
return renewed
"""


# KEYS: 1 holders zset. The holders whose lease has not ended.
_COUNT_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
return redis.call('ZCOUNT', KEYS[1], '(' .. tostring(now), '+inf')
"""


class RedisInFlight:
    """At most ``limit`` holders per scope across every process using this Redis."""

    def __init__(
        self,
        redis: RedisClient,
        key_prefix: str,
        limit: int | None,
        *,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        sleep: Sleep | None = None,
    ) -> None:
        if limit is not None and limit < 1:
            raise ValueError(f"max_requests_in_flight must be at least 1, got {limit!r}")
        if lease_seconds <= 0:
            raise ValueError(f"the lease must be positive, got {lease_seconds!r}")
        self.limit = limit
        self.lease_seconds = lease_seconds
        self._redis = redis
        self._prefix = key_prefix
        self._sleep = sleep or asyncio.sleep
        self._take = redis.register_script(_TAKE_LUA)
        self._renew = redis.register_script(_RENEW_LUA)
        self._count = redis.register_script(_COUNT_LUA)

    def key(self, scope: str = "") -> str:
        return f"{self._prefix}{scope}"

    async def held(self, scope: str = "") -> int:
        """Slots of ``scope`` held now, by every process (expired leases excluded, on the
        Redis server's clock, as the leases are)."""
        return int(await self._count(keys=[self.key(scope)]))

    async def _renew_while_held(self, key: str, holder: str) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            await self._renew(keys=[key], args=[holder, repr(self.lease_seconds)])

    @asynccontextmanager
    async def slot(self, scope: str = "") -> AsyncIterator[None]:
        if self.limit is None:
            yield
            return
        key = self.key(scope)
        holder = f"{time.time_ns()}-{os.getpid()}-{os.urandom(6).hex()}"
        poll = FIRST_POLL_SECONDS
        while not int(
            await self._take(keys=[key], args=[self.limit, holder, repr(self.lease_seconds)])
        ):
            await self._sleep(poll)
            poll = min(poll * 1.5, MAX_POLL_SECONDS)
        renewer = asyncio.create_task(self._renew_while_held(key, holder))
        try:
            yield
        finally:
            renewer.cancel()
            # A renewal that failed (Redis away) ends with its error; the lease then
            # frees the slot by itself, so the request's own outcome is what counts.
            await asyncio.gather(renewer, return_exceptions=True)
            with suppress(Exception):
                await asyncio.shield(self._redis.zrem(key, holder))


__all__ = ["DEFAULT_LEASE_SECONDS", "MemoryInFlight", "RedisInFlight"]
