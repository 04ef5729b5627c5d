"""The shared rate limiter: how fast and how often segport may call a destination.

Constant Contact limits requests per *application* (4 per second, 10,000 per
day), so the budget is shared by every process of a deployment. Two adapters
implement :class:`service.plugins.api.RateLimiter`:

- :class:`MemoryRateLimiter` for embedded mode (one process);
- :class:`RedisRateLimiter` for distributed mode: one atomic Lua script per
  attempt, so every worker draws from the same budget.

Both enforce a sliding log (never more than N admissions in ANY one-second
window; fixed windows would allow 2N across a boundary), a per-day counter
keyed by the UTC date, and a pause that every process honours. When the daily
quota is spent, :meth:`acquire` waits until 00:00 UTC and says so in the log:
a rate limit slows a run down, it never fails it.

:class:`RateLimiters` hands out one limiter per destination, built from the
destination's declared :class:`~service.plugins.api.DestinationLimits`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from service.coordination.in_flight import DEFAULT_LEASE_SECONDS, MemoryInFlight, RedisInFlight
from service.coordination.redis import RedisClient
from service.plugins.api import Destination, DestinationLimits, RunReporter

log = structlog.get_logger(__name__)

Clock = Callable[[], float]
"""Seconds since the Unix epoch (UTC), like :func:`time.time`."""
Sleep = Callable[[float], Awaitable[None]]
WaitObserver = Callable[[str, float], None]
"""Called with (limiter key, seconds waited) after every admission (metrics)."""
LongWaitReport = Callable[[str, datetime], Awaitable[None]]
"""Told (reason, when it ends) when an acquire starts a long wait (a pause, the daily
quota): a run says so on itself (:class:`ReportingLimiter`)."""

KEY_PREFIX = "segport:ratelimit:"
MAX_SINGLE_SLEEP = 60.0
"""Long waits (a spent daily quota, a pause) are slept in slices so that a changed
pause or a clock correction is noticed within a minute."""
PAUSE_POLL_SECONDS = 2.0
"""While paused, how often a waiter looks again (a pause lifted by another process,
through Redis, is noticed this fast; one lifted in this process wakes waiters at once)."""
DAY = 86400
ARRIVAL_MARGIN = 0.2
"""Seconds added to every window: destinations count requests when they *arrive*, and
the time from our admission to their arrival varies (a garbage collection or a busy event
loop on our side, the network, the destination's own load); measured against the fake
Constant Contact during a million-profile run it reached ~220 ms. The margin is the jitter
tolerated before a request could be counted as one too many, at the price of a rate of
N/(1 + margin) per second (3.3 instead of 4 for Constant Contact)."""


@dataclass(frozen=True, slots=True)
class WindowRule:
    """At most ``count`` admissions in any ``window`` seconds."""

    count: int
    window: float

    @classmethod
    def from_rate(cls, requests_per_second: float | None) -> WindowRule | None:
        """The sliding-window rule for a declared rate, or None when unlimited.

        An integer rate N gives N per 1-second window. A fractional rate is rounded
        *down* (2.5/s gives 2 per second) and a rate below 1 widens the window
        (0.5/s gives 1 per 2 seconds), so no 1-second window ever exceeds the rate.
        Every window is widened by :data:`ARRIVAL_MARGIN`.
        """
        if requests_per_second is None:
            return None
        if requests_per_second <= 0:
            raise ValueError(f"requests_per_second must be positive, got {requests_per_second!r}")
        count = max(1, math.floor(requests_per_second))
        window = max(1.0, count / requests_per_second) + ARRIVAL_MARGIN
        return cls(count=count, window=window)


@dataclass(frozen=True, slots=True)
class Pause:
    """A pause in force: no request of the destination before ``until``, and why."""

    key: str
    until: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class Decision:
    """One attempt's answer: admitted, or how long to wait and why."""

    admitted: bool
    wait: float = 0.0
    reason: str = ""
    """``window``, ``daily`` or ``paused``."""
    detail: str = ""
    """For ``paused``: the reason given to :meth:`pause_until`."""


def utc_date(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).date().isoformat()


def next_utc_midnight(epoch_seconds: float) -> float:
    return (math.floor(epoch_seconds / DAY) + 1) * DAY


class _WaitingLimiter:
    """The waiting loop both adapters share; subclasses make one attempt at a time."""

    def __init__(
        self,
        key: str,
        limits: DestinationLimits,
        *,
        clock: Clock | None,
        sleep: Sleep | None,
        on_wait: WaitObserver | None,
    ) -> None:
        self.key = key
        self.window_rule = WindowRule.from_rate(limits.requests_per_second)
        self.per_day = limits.requests_per_day
        if self.per_day is not None and self.per_day < 1:
            raise ValueError(f"requests_per_day must be at least 1, got {self.per_day!r}")
        self._clock = clock
        self._sleep = sleep
        self._on_wait = on_wait
        self._lifted = asyncio.Event()
        self.slots: MemoryInFlight | RedisInFlight = MemoryInFlight(limits.max_requests_in_flight)
        """The concurrency cap (``max_requests_in_flight`` per scope); Redis-backed in the
        Redis adapter."""

    def in_flight(self, scope: str = "") -> AbstractAsyncContextManager[None]:
        """Hold one of the declared in-flight slots of ``scope`` (see :mod:`.in_flight`)."""
        return self.slots.slot(scope)

    def _now(self) -> float:
        return self._clock() if self._clock is not None else time.time()

    async def _attempt(self) -> Decision:
        raise NotImplementedError

    async def pause(self) -> Pause | None:
        """The pause in force, if any."""
        raise NotImplementedError

    async def lift_pause(self) -> Pause | None:
        """End the pause in force (the quota was raised, or the guess was wrong); waiters
        try again at once in this process, within :data:`PAUSE_POLL_SECONDS` elsewhere.
        Returns the pause lifted, or None when there was none."""
        raise NotImplementedError

    def _wake(self) -> None:
        self._lifted.set()
        self._lifted = asyncio.Event()

    async def _nap(self, seconds: float) -> None:
        if self._sleep is not None:
            await self._sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._lifted.wait(), timeout=seconds)

    def _long_wait_reason(self, decision: Decision) -> str:
        if decision.reason == "paused":
            return decision.detail or f"Requests to {self.key} are paused"
        return (
            f"The daily limit of {self.per_day} requests to {self.key} is used up "
            "(segport's own count, shared by every run)"
        )

    async def acquire(self) -> float:
        """Wait for a request slot; returns the seconds waited. Never raises for a limit."""
        return await self.acquire_reporting(None)

    async def acquire_reporting(self, report: LongWaitReport | None) -> float:
        """:meth:`acquire`, telling ``report`` why and until when whenever a long wait
        (a pause, the daily quota) starts or changes."""
        started = self._now()
        announced: tuple[str, str] | None = None
        while True:
            decision = await self._attempt()
            if decision.admitted:
                waited = max(0.0, self._now() - started)
                if self._on_wait is not None:
                    self._on_wait(self.key, waited)
                return waited
            if decision.reason in ("daily", "paused") and announced != (
                decision.reason,
                decision.detail,
            ):
                # Long waits are worth one clear line; per-second waits are routine.
                announced = (decision.reason, decision.detail)
                resume_at = datetime.fromtimestamp(self._now() + decision.wait, UTC)
                log.warning(
                    "rate_limit_daily_quota_spent"
                    if decision.reason == "daily"
                    else "rate_limit_paused",
                    destination=self.key,
                    requests_per_day=self.per_day,
                    reason=decision.detail or None,
                    resume_at=resume_at.isoformat(),
                    wait_seconds=round(decision.wait, 3),
                )
                if report is not None:
                    await report(self._long_wait_reason(decision), resume_at)
            longest = PAUSE_POLL_SECONDS if decision.reason == "paused" else MAX_SINGLE_SLEEP
            await self._nap(min(max(decision.wait, 0.001), longest))


class MemoryRateLimiter(_WaitingLimiter):
    """In-process limiter for embedded mode (a single process owns the budget)."""

    def __init__(
        self,
        key: str,
        limits: DestinationLimits,
        *,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
        on_wait: WaitObserver | None = None,
    ) -> None:
        super().__init__(key, limits, clock=clock, sleep=sleep, on_wait=on_wait)
        self._admitted: deque[float] = deque()
        self._day = ""
        self._used_today = 0
        self._paused_until = 0.0
        self._pause_reason = ""

    async def _attempt(self) -> Decision:
        # No await inside: each attempt is atomic with respect to other tasks.
        now = self._now()
        if now < self._paused_until:
            return Decision(False, self._paused_until - now, "paused", self._pause_reason)
        today = utc_date(now)
        if today != self._day:
            self._day, self._used_today = today, 0
        if self.per_day is not None and self._used_today >= self.per_day:
            return Decision(False, next_utc_midnight(now) - now, "daily")
        rule = self.window_rule
        if rule is not None:
            while self._admitted and self._admitted[0] <= now - rule.window:
                self._admitted.popleft()
            if len(self._admitted) >= rule.count:
                return Decision(False, self._admitted[0] + rule.window - now, "window")
            self._admitted.append(now)
        self._used_today += 1
        return Decision(True)

    async def pause_until(self, until: datetime, reason: str) -> None:
        until_ts = until.timestamp()
        if until_ts > self._paused_until:
            self._paused_until, self._pause_reason = until_ts, reason
            log.info(
                "rate_limit_pause", destination=self.key, until=until.isoformat(), reason=reason
            )

    async def pause(self) -> Pause | None:
        if self._paused_until <= self._now():
            return None
        return Pause(self.key, datetime.fromtimestamp(self._paused_until, UTC), self._pause_reason)

    async def lift_pause(self) -> Pause | None:
        lifted = await self.pause()
        self._paused_until, self._pause_reason = 0.0, ""
        if lifted is not None:
            log.info("rate_limit_pause_lifted", destination=self.key)
        self._wake()
        return lifted


# One attempt, atomically. Times are float seconds since the epoch; replies that
# carry floats are strings because Redis truncates Lua numbers to integers.
# KEYS: 1 sliding-log zset, 2 day-counter prefix, 3 pause hash.
# ARGV: 1 now ('' = the Redis server's clock, the same for every worker),
#       2 window count (0 = none), 3 window seconds, 4 per-day limit (0 = none), 5 member.
_ACQUIRE_LUA = """
local function civil(z)
  z = z + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524)
                          - math.floor(doe / 146096)) / 365)
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  if m <= 2 then y = y + 1 end
  return string.format('%04d-%02d-%02d', y, m, d)
end

local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[1])
end
local count = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local per_day = tonumber(ARGV[4])

local paused = tonumber(redis.call('HGET', KEYS[3], 'until') or '0')
if paused > now then
  return {0, tostring(paused - now), 'paused', redis.call('HGET', KEYS[3], 'reason') or ''}
end

local day = math.floor(now / 86400)
local day_key = KEYS[2] .. civil(day)
if per_day > 0 then
  local used = tonumber(redis.call('GET', day_key) or '0')
  if used >= per_day then
    return {0, tostring((day + 1) * 86400 - now), 'daily', ''}
  end
end

if count > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tostring(now - window))
  -- Every remaining entry is newer than now - window (out-of-order ones too).
  if redis.call('ZCARD', KEYS[1]) >= count then
    local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    return {0, tostring(tonumber(oldest[2]) + window - now), 'window', ''}
  end
  redis.call('ZADD', KEYS[1], tostring(now), ARGV[5])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000) + 1000)
end

if per_day > 0 then
  redis.call('INCR', day_key)
  -- Relative expiry, so an injected clock cannot make it expire at once.
  redis.call('EXPIRE', day_key, math.ceil((day + 1) * 86400 - now) + 3600)
end
return {1, '0', '', ''}
"""

# KEYS: 1 pause hash. ARGV: 1 until, 2 reason, 3 now ('' = server clock).
_PAUSE_LUA = """
local now
if ARGV[3] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[3])
end
local until_ts = tonumber(ARGV[1])
local current = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if until_ts <= current or until_ts <= now then
  return 0
end
redis.call('HSET', KEYS[1], 'until', ARGV[1], 'reason', ARGV[2])
redis.call('EXPIRE', KEYS[1], math.ceil(until_ts - now) + 1)
return 1
"""


class RedisRateLimiter(_WaitingLimiter):
    """Limiter shared by every process that talks to the same Redis.

    Without an injected clock the script reads the Redis server's clock, so
    workers on hosts with skewed clocks still share one consistent window.
    """

    def __init__(
        self,
        redis: RedisClient,
        key: str,
        limits: DestinationLimits,
        *,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
        on_wait: WaitObserver | None = None,
        in_flight_lease_seconds: float = DEFAULT_LEASE_SECONDS,
    ) -> None:
        super().__init__(key, limits, clock=clock, sleep=sleep, on_wait=on_wait)
        self._redis = redis
        base = f"{KEY_PREFIX}{key}:"
        self.window_key = base + "window"
        self.day_key_prefix = base + "day:"
        self.pause_key = base + "pause"
        self._acquire_script = redis.register_script(_ACQUIRE_LUA)
        self._pause_script = redis.register_script(_PAUSE_LUA)
        self.slots = RedisInFlight(
            redis,
            base + "inflight:",
            limits.max_requests_in_flight,
            lease_seconds=in_flight_lease_seconds,
        )

    def _script_now(self) -> str:
        return "" if self._clock is None else repr(self._clock())

    async def _attempt(self) -> Decision:
        rule = self.window_rule
        reply = await self._acquire_script(
            keys=[self.window_key, self.day_key_prefix, self.pause_key],
            args=[
                self._script_now(),
                rule.count if rule else 0,
                repr(rule.window) if rule else "1.0",
                self.per_day or 0,
                f"{time.time_ns()}-{os.urandom(6).hex()}",
            ],
        )
        admitted, wait, reason, detail = reply
        return Decision(
            admitted=int(admitted) == 1,
            wait=float(_text(wait)),
            reason=_text(reason),
            detail=_text(detail),
        )

    async def pause_until(self, until: datetime, reason: str) -> None:
        changed = await self._pause_script(
            keys=[self.pause_key], args=[repr(until.timestamp()), reason, self._script_now()]
        )
        if int(changed):
            log.info(
                "rate_limit_pause", destination=self.key, until=until.isoformat(), reason=reason
            )

    async def pause(self) -> Pause | None:
        stored = await self._redis.hgetall(self.pause_key)
        fields = {_text(k): _text(v) for k, v in stored.items()}
        until = float(fields.get("until") or 0)
        now = self._now() if self._clock is not None else time.time()
        if until <= now:
            return None
        return Pause(self.key, datetime.fromtimestamp(until, UTC), fields.get("reason", ""))

    async def lift_pause(self) -> Pause | None:
        lifted = await self.pause()
        await self._redis.delete(self.pause_key)
        if lifted is not None:
            log.info("rate_limit_pause_lifted", destination=self.key)
        self._wake()
        return lifted


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RateLimiters:
    """One limiter per destination key, Redis-backed when ``redis`` is given.

    Constant Contact counts requests per application, so the key is the
    destination type's key: every connection of that type shares one budget.
    """

    def __init__(
        self,
        redis: RedisClient | None = None,
        *,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
        on_wait: WaitObserver | None = None,
        in_flight_lease_seconds: float = DEFAULT_LEASE_SECONDS,
    ) -> None:
        self._redis = redis
        self._in_flight_lease = in_flight_lease_seconds
        self._clock = clock
        self._sleep = sleep
        self._on_wait = on_wait
        self._limiters: dict[str, MemoryRateLimiter | RedisRateLimiter] = {}

    @property
    def shared(self) -> bool:
        """True when the budget is shared with other processes (Redis)."""
        return self._redis is not None

    def for_destination(self, destination: Destination) -> MemoryRateLimiter | RedisRateLimiter:
        return self.for_key(destination.key, destination.limits)

    def for_key(self, key: str, limits: DestinationLimits) -> MemoryRateLimiter | RedisRateLimiter:
        limiter = self._limiters.get(key)
        if limiter is None:
            if self._redis is not None:
                limiter = RedisRateLimiter(
                    self._redis,
                    key,
                    limits,
                    clock=self._clock,
                    sleep=self._sleep,
                    on_wait=self._on_wait,
                    in_flight_lease_seconds=self._in_flight_lease,
                )
            else:
                limiter = MemoryRateLimiter(
                    key, limits, clock=self._clock, sleep=self._sleep, on_wait=self._on_wait
                )
            self._limiters[key] = limiter
        return limiter


class ReportingLimiter:
    """A run's view of a destination's limiter: the same budget, but a long wait (a pause,
    the daily quota) is said on the run through its reporter instead of only in the log,
    also when the pause was set by an earlier run."""

    def __init__(self, inner: MemoryRateLimiter | RedisRateLimiter, reporter: RunReporter) -> None:
        self._inner = inner
        self._reporter = reporter

    async def acquire(self) -> float:
        return await self._inner.acquire_reporting(self._reporter.waiting)

    async def pause_until(self, until: datetime, reason: str) -> None:
        await self._inner.pause_until(until, reason)

    def in_flight(self, scope: str = "") -> AbstractAsyncContextManager[None]:
        return self._inner.in_flight(scope)


__all__ = [
    "MemoryRateLimiter",
    "Pause",
    "RateLimiters",
    "RedisRateLimiter",
    "ReportingLimiter",
    "WindowRule",
    "next_utc_midnight",
    "utc_date",
]
