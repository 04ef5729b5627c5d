"""The public testing kit keeps the promises the service keeps: the rate limiter enforces the
declared limits and pauses, the credentials refresh once and ahead of expiry, and batches
are packed as a run packs them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from service.plugins import (
    AuthorizationLost,
    Destination,
    DestinationContext,
    DestinationLimits,
    DestinationSession,
    OAuthTokens,
    Rejection,
)
from service.plugins.testing import (
    InMemoryCredentials,
    InMemoryRateLimiter,
    InstantSleep,
    RecordingReporter,
    VirtualClock,
    batch_of,
    make_context,
    pack_batches,
)

MIDNIGHT = datetime(2030, 1, 2, tzinfo=UTC).timestamp()


class Counting(Destination):
    """Refreshes by numbering tokens; packs at most three records, 60 bytes a request."""

    key = "counting"
    display_name = "Counting"
    limits = DestinationLimits(batch_max_records=3, batch_max_bytes=60, requests_per_second=2)

    def __init__(self) -> None:
        self.refreshed: list[str] = []

    def build_record(self, values: Mapping[str, Any]) -> dict[str, Any] | Rejection:
        if "email" not in values:
            return Rejection("EMAIL_MISSING", "no e-mail")
        return {"email": values["email"]}

    def batch_envelope_size(self, export_settings: Mapping[str, Any]) -> int:
        return 2  # "[" and "]"

    async def refresh_tokens(self, ctx: DestinationContext, tokens: OAuthTokens) -> OAuthTokens:
        self.refreshed.append(tokens.access_token)
        return OAuthTokens(access_token=tokens.access_token + "+")

    def open_session(self, ctx: DestinationContext) -> DestinationSession:
        raise NotImplementedError


async def test_the_limiter_admits_the_declared_rate_per_window() -> None:
    clock = VirtualClock(start=MIDNIGHT + 10)
    limiter = InMemoryRateLimiter(
        DestinationLimits(requests_per_second=2), clock=clock, sleep=clock.sleep
    )
    waits = [await limiter.acquire() for _ in range(5)]
    assert waits[:2] == [0.0, 0.0]
    assert waits[2] == pytest.approx(1.2)  # one second, widened by the arrival margin
    assert limiter.acquired == 5


async def test_the_limiter_waits_for_midnight_utc_when_the_daily_quota_is_spent() -> None:
    clock = VirtualClock(start=MIDNIGHT - 30)
    limiter = InMemoryRateLimiter(
        DestinationLimits(requests_per_day=1), clock=clock, sleep=clock.sleep
    )
    assert await limiter.acquire() == 0.0
    assert await limiter.acquire() == pytest.approx(30.0)
    assert clock.now == pytest.approx(MIDNIGHT)


async def test_the_limiter_honours_a_pause_and_records_it() -> None:
    clock = VirtualClock(start=MIDNIGHT)
    limiter = InMemoryRateLimiter(DestinationLimits(), clock=clock, sleep=clock.sleep)
    until = datetime.fromtimestamp(MIDNIGHT + 90, UTC)
    await limiter.pause_until(until, "quota spent")
    assert await limiter.acquire() == pytest.approx(90.0)
    assert limiter.pauses == [(until, "quota spent")]


def test_a_rate_that_is_not_positive_is_refused() -> None:
    with pytest.raises(ValueError, match="requests_per_second must be positive"):
        InMemoryRateLimiter(DestinationLimits(requests_per_second=0))


async def test_credentials_refresh_once_through_the_destination() -> None:
    destination = Counting()
    async with httpx.AsyncClient() as http:
        ctx = make_context(destination, http, tokens=OAuthTokens("a", refresh_token="r"))
        credentials = ctx.credentials
        stale = await credentials.tokens()
        fresh = await credentials.refresh(stale)
        again = await credentials.refresh(stale)  # a second caller with the same stale token
    assert (fresh.access_token, fresh.refresh_token) == ("a+", "r")
    assert again is fresh
    assert destination.refreshed == ["a"]


async def test_tokens_about_to_expire_are_refreshed_before_use() -> None:
    destination = Counting()
    soon = datetime.now(UTC) + timedelta(seconds=30)
    async with httpx.AsyncClient() as http:
        ctx = make_context(destination, http, tokens=OAuthTokens("a", expires_at=soon))
        assert (await ctx.credentials.tokens()).access_token == "a+"


async def test_credentials_without_tokens_are_not_authorized() -> None:
    credentials = InMemoryCredentials(secrets={"apiKey": "k"})
    assert await credentials.secrets() == {"apiKey": "k"}
    with pytest.raises(AuthorizationLost):
        await credentials.tokens()


async def test_the_context_has_instant_sleep_and_the_given_settings() -> None:
    reporter = RecordingReporter()
    async with httpx.AsyncClient() as http:
        ctx = make_context(Counting(), http, export_settings={"listId": "x"}, reporter=reporter)
        await ctx.sleep(3600)
    assert isinstance(ctx.sleep, InstantSleep)
    assert ctx.sleep.seconds == [3600]
    assert ctx.export_settings == {"listId": "x"}
    assert ctx.reporter is reporter
    assert isinstance(ctx.rate_limiter, InMemoryRateLimiter)


def test_pack_batches_packs_within_the_declared_limits() -> None:
    values = [{"email": f"{n}@x.io"} for n in range(7)]
    batches = pack_batches(Counting(), values, {})
    assert [len(b.records) for b in batches] == [3, 3, 1]
    for batch in batches:
        assert batch.size_bytes == len(b"[" + b",".join(r.encoded for r in batch.records) + b"]")
        assert batch.size_bytes < 60
    assert [r.profile_id for r in batches[0].records] == ["p0", "p1", "p2"]


def test_pack_batches_refuses_a_record_the_destination_rejects() -> None:
    with pytest.raises(ValueError, match="build_record rejected record 1"):
        pack_batches(Counting(), [{"email": "a@x.io"}, {}], {})


def test_batch_of_sends_records_as_given_whatever_the_limits() -> None:
    batch = batch_of(Counting(), [{"anything": n} for n in range(5)], {})
    body = b"[" + b",".join(r.encoded for r in batch.records) + b"]"
    assert len(batch.records) == 5
    assert batch.size_bytes == len(body)
