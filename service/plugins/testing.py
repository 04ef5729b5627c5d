"""The public testing kit for destination plugins: the service's side of a run, in memory.

A plugin's tests build the :class:`~service.plugins.DestinationContext` the service
would hand their destination, with a real ``httpx.AsyncClient`` (talk to a real
server speaking your destination's API, not to mocks) and these stand-ins:

- :class:`InMemoryRateLimiter`: the declared per-second and per-day limits and
  ``pause_until``, in one process, on real or :class:`VirtualClock` time;
- :class:`InMemoryCredentials`: a ``CredentialSource`` holding tokens and secrets,
  refreshing through the destination as the service does;
- :class:`InstantSleep` and :class:`RecordingReporter`: a ``ctx.sleep`` that costs no
  time and a ``RunReporter`` that remembers what the run was told;
- :func:`make_context` ties them together; :func:`pack_batches` builds, encodes and
  packs records exactly as a run does, :func:`batch_of` packs records as given;
- :func:`discover_destinations` loads plugins as the service does at start-up.

Only names in ``__all__`` are public (docs/plugins.md lists them). The kit depends
on the plugin platform alone, never on the service's own adapters.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from service.plugins.api import (
    AuthKind,
    AuthorizationLost,
    CredentialSource,
    Destination,
    DestinationContext,
    DestinationLimits,
    EncodedRecord,
    OAuthTokens,
    RateLimiter,
    RunReporter,
    UploadBatch,
)
from service.plugins.batching import SEPARATOR_BYTES, ContactBatcher
from service.plugins.manager import load_destinations

Clock = Callable[[], float]
"""Seconds since the Unix epoch, like :func:`time.time`."""
Sleep = Callable[[float], Awaitable[None]]

REFRESH_AHEAD = timedelta(seconds=60)
"""Tokens expiring within this are refreshed before use (the CredentialSource contract)."""
ARRIVAL_MARGIN = 0.2
"""Seconds added to each rate window: a destination counts requests when they arrive, and
the time from admission to arrival varies, so admissions exactly one window apart could
arrive within one window."""
DAY = 86400


class VirtualClock:
    """Time that passes only when something sleeps on it: a rate limiter's real logic
    without spending real seconds. Starts at the real time, so dates are real."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


class InMemoryRateLimiter:
    """A :class:`~service.plugins.RateLimiter` enforcing ``limits`` in one process.

    At most ``requests_per_second`` admissions in any window (a sliding log), at most
    ``requests_per_day`` per UTC day (then it waits for midnight), none before a
    ``pause_until``. Counts admissions in ``acquired`` and records pauses in ``pauses``.
    """

    def __init__(
        self,
        limits: DestinationLimits,
        *,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        margin: float = ARRIVAL_MARGIN,
    ) -> None:
        rate = limits.requests_per_second
        self._count: int | None = None
        self._window = 0.0
        if rate is not None:
            if rate <= 0:
                raise ValueError(f"requests_per_second must be positive, got {rate!r}")
            # An integer rate N gives N per window; a fractional rate never exceeds itself
            # in any one-second window (2.5/s: 2 per second; 0.5/s: 1 per 2 seconds).
            self._count = max(1, math.floor(rate))
            self._window = max(1.0, self._count / rate) + margin
        self._per_day = limits.requests_per_day
        self._clock = clock
        self._sleep = sleep
        self._admitted: deque[float] = deque()
        self._day = ""
        self._used_today = 0
        self._paused_until = 0.0
        self.acquired = 0
        """Requests admitted so far."""
        self.pauses: list[tuple[datetime, str]] = []
        """Every ``pause_until(until, reason)`` received, in order."""
        self.in_flight_cap = limits.max_requests_in_flight
        self.held: dict[str, int] = {}
        """In-flight slots held now, by scope."""
        self.peak_in_flight: dict[str, int] = {}
        """The most in-flight slots of each scope ever held at once."""
        self._slot_freed = asyncio.Event()

    def _wait_needed(self, now: float) -> float:
        """Seconds until a request may go (0: admitted, and counted)."""
        if now < self._paused_until:
            return self._paused_until - now
        today = datetime.fromtimestamp(now, UTC).date().isoformat()
        if today != self._day:
            self._day, self._used_today = today, 0
        if self._per_day is not None and self._used_today >= self._per_day:
            return (math.floor(now / DAY) + 1) * DAY - now
        if self._count is not None:
            while self._admitted and self._admitted[0] <= now - self._window:
                self._admitted.popleft()
            if len(self._admitted) >= self._count:
                return self._admitted[0] + self._window - now
            self._admitted.append(now)
        self._used_today += 1
        return 0.0

    async def acquire(self) -> float:
        started = self._clock()
        while (wait := self._wait_needed(self._clock())) > 0:
            await self._sleep(max(wait, 0.001))
        self.acquired += 1
        return max(0.0, self._clock() - started)

    async def pause_until(self, until: datetime, reason: str) -> None:
        self.pauses.append((until, reason))
        self._paused_until = max(self._paused_until, until.timestamp())

    @asynccontextmanager
    async def in_flight(self, scope: str = "") -> AsyncIterator[None]:
        """At most ``max_requests_in_flight`` holders of ``scope`` at once (none without)."""
        cap = self.in_flight_cap
        if cap is not None:
            while self.held.get(scope, 0) >= cap:
                self._slot_freed.clear()
                await self._slot_freed.wait()
            self.held[scope] = self.held.get(scope, 0) + 1
            self.peak_in_flight[scope] = max(self.peak_in_flight.get(scope, 0), self.held[scope])
        try:
            yield
        finally:
            if cap is not None:
                self.held[scope] -= 1
                self._slot_freed.set()


TokenRefresher = Callable[[OAuthTokens], Awaitable[OAuthTokens]]


class InMemoryCredentials:
    """A :class:`~service.plugins.CredentialSource` over tokens and secrets held here.

    Like the service's: ``tokens()`` refreshes first when the access token expires within
    a minute; ``refresh(stale)`` refreshes once (a caller with an already replaced token
    gets the current one) and keeps the old refresh token when none comes back. Refreshing
    needs :meth:`refresh_through` (``make_context`` calls it)."""

    def __init__(
        self, tokens: OAuthTokens | None = None, secrets: Mapping[str, Any] | None = None
    ) -> None:
        self.current = tokens
        """The tokens now held (tests may replace them, e.g. with a narrower scope)."""
        self.refreshes = 0
        """Refreshes made through the destination."""
        self._secrets = dict(secrets or {})
        self._refresher: TokenRefresher | None = None
        self.rejections: list[str] = []
        """Every ``rejected(message)``: what the service would show on a connection it
        marks NEEDS_REAUTHORIZATION."""

    def refresh_through(self, destination: Destination, ctx: DestinationContext) -> None:
        """Refresh with ``destination.refresh_tokens`` in ``ctx``, as the service would."""

        async def refresher(tokens: OAuthTokens) -> OAuthTokens:
            return await destination.refresh_tokens(ctx, tokens)

        self._refresher = refresher

    def _held(self) -> OAuthTokens:
        if self.current is None:
            raise AuthorizationLost("the test's credentials hold no OAuth tokens")
        return self.current

    async def tokens(self) -> OAuthTokens:
        current = self._held()
        expires_at = current.expires_at
        if expires_at is not None and expires_at - datetime.now(UTC) <= REFRESH_AHEAD:
            return await self.refresh(current)
        return current

    async def refresh(self, stale: OAuthTokens) -> OAuthTokens:
        current = self._held()
        if stale.access_token != current.access_token:
            return current  # refreshed already since the caller read its tokens
        if self._refresher is None:
            raise AuthorizationLost("the test's credentials cannot refresh (no refresh_through)")
        fresh = await self._refresher(current)
        if fresh.refresh_token is None:
            fresh.refresh_token = current.refresh_token
        self.current = fresh
        self.refreshes += 1
        return fresh

    async def secrets(self) -> dict[str, Any]:
        return dict(self._secrets)

    async def rejected(self, message: str) -> None:
        self.rejections.append(message)

    def replace_secrets(self, secrets: Mapping[str, Any]) -> None:
        """New secret settings (as an admin replacing an API key would give)."""
        self._secrets = dict(secrets)


class InstantSleep:
    """A ``ctx.sleep`` that returns at once (backoff must not cost test time) and records
    every wait in ``seconds``. Subclass it to act on a wait (e.g. move a clock)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)
        await asyncio.sleep(0)


class RecordingReporter:
    """A :class:`~service.plugins.RunReporter` that remembers every ``waiting`` and
    ``destination_progress`` call; set ``cancel_requested`` to make ``cancelled()`` true."""

    def __init__(self) -> None:
        self.waits: list[tuple[str, datetime | None]] = []
        self.progress: list[tuple[int, int]] = []
        self.cancel_requested = False

    async def waiting(self, reason: str, until: datetime | None = None) -> None:
        self.waits.append((reason, until))

    async def destination_progress(self, processed: int, total: int) -> None:
        self.progress.append((processed, total))

    def cancelled(self) -> bool:
        return self.cancel_requested


def make_context(
    destination: Destination,
    http: httpx.AsyncClient,
    *,
    tokens: OAuthTokens | None = None,
    secrets: Mapping[str, Any] | None = None,
    credentials: CredentialSource | None = None,
    rate_limiter: RateLimiter | None = None,
    connection_settings: Mapping[str, Any] | None = None,
    export_settings: Mapping[str, Any] | None = None,
    reporter: RunReporter | None = None,
    sleep: Sleep | None = None,
    auth_kind: AuthKind | None = None,
) -> DestinationContext:
    """The context the service would give ``destination``, in memory, for a connection by
    ``auth_kind`` (default: the destination's first way to connect).

    Without ``credentials``, an :class:`InMemoryCredentials` of ``tokens`` and
    ``secrets`` that refreshes through ``destination``; without ``rate_limiter``, an
    :class:`InMemoryRateLimiter` of the destination's limits on real time; without
    ``sleep``, an :class:`InstantSleep`."""
    held = credentials or InMemoryCredentials(tokens, secrets)
    ctx = DestinationContext(
        http=http,
        rate_limiter=rate_limiter or InMemoryRateLimiter(destination.limits),
        credentials=held,
        connection_settings=dict(connection_settings or {}),
        export_settings=dict(export_settings or {}),
        reporter=reporter,
        sleep=sleep or InstantSleep(),
        auth_kind=auth_kind or destination.auth_kind,
    )
    if isinstance(held, InMemoryCredentials):
        held.refresh_through(destination, ctx)
    return ctx


def pack_batches(
    destination: Destination,
    values: Iterable[Mapping[str, Any]],
    export_settings: Mapping[str, Any],
) -> list[UploadBatch]:
    """Build, encode and pack records as a run does: ``build_record`` for each mapped
    value set (profile ids ``p0``, ``p1``, ...), ``encode_record``, then the service's
    batch packer within the destination's limits. A rejected record raises ValueError."""
    batcher = ContactBatcher(destination.limits, destination.batch_envelope_size(export_settings))
    batches: list[UploadBatch] = []
    for number, mapped in enumerate(values):
        record = destination.build_record(mapped)
        if not isinstance(record, dict):
            raise ValueError(f"build_record rejected record {number} ({mapped!r}): {record}")
        closed = batcher.add(EncodedRecord(f"p{number}", destination.encode_record(record)))
        if closed is not None:
            batches.append(closed)
    last = batcher.flush()
    if last is not None:
        batches.append(last)
    return batches


def batch_of(
    destination: Destination,
    records: Sequence[Mapping[str, Any]],
    export_settings: Mapping[str, Any],
) -> UploadBatch:
    """One batch of ``records`` exactly as given (no ``build_record``, no limits): to send
    what a run would refuse. Profile ids are the records' positions (``p0``, ...)."""
    encoded = [
        EncodedRecord(f"p{number}", destination.encode_record(record))
        for number, record in enumerate(records)
    ]
    size = destination.batch_envelope_size(export_settings) + sum(len(r.encoded) for r in encoded)
    return UploadBatch(encoded, size + SEPARATOR_BYTES * max(len(encoded) - 1, 0))


def discover_destinations(*plugins: object, entry_points: bool = True) -> dict[str, Destination]:
    """The destinations the service would have, by key: the installed plugins (their entry
    points, unless ``entry_points`` is false) and ``plugins`` (modules or objects with
    hook implementations), loaded and checked as at start-up (the declared plugin API
    version, unknown hooks, duplicate keys raise the service's ``PluginError``)."""
    registry = load_destinations(plugins, load_entry_points=entry_points)
    return {destination.key: destination for destination in registry.all()}


__all__ = [
    "InMemoryCredentials",
    "InMemoryRateLimiter",
    "InstantSleep",
    "RecordingReporter",
    "VirtualClock",
    "batch_of",
    "discover_destinations",
    "make_context",
    "pack_batches",
]
