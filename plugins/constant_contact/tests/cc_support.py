"""Helpers for the Constant Contact plugin's tests: a fresh fake server per test, real HTTP,
the service's real rate limiter and credential source, and contexts that tie them up.

A module with its own name (not ``conftest``) so tests can import it beside the
repository's other conftest modules."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from segport_constant_contact import ConstantContact, ConstantContactSettings
from segport_constant_contact.fake import RunningFake, run_fake
from segport_constant_contact.oauth import access_token_expiry

from service.connections.credentials import PendingCredentials
from service.coordination.limiter import MemoryRateLimiter
from service.plugins import DestinationContext, OAuthTokens, RateLimiter

GENERAL_LIST = "07936f78-662a-11eb-af0a-fa163e56c9b0"
REDIRECT_URI = "http://127.0.0.1:8000/oauth/callback"


@pytest.fixture
def fake() -> Iterator[RunningFake]:
    with run_fake(seed=7) as running:
        yield running


@pytest.fixture
def settings(fake: RunningFake) -> ConstantContactSettings:
    return ConstantContactSettings(
        client_id=fake.state.config.client_id,
        client_secret=fake.state.config.client_secret,
        api_base_url=fake.api_base_url,
        auth_base_url=fake.auth_base_url,
        backoff_base_seconds=0.01,
        backoff_max_seconds=0.05,
        confirm_initial_interval_seconds=0.01,
        confirm_max_interval_seconds=0.05,
        queued_activities_wait_seconds=0.01,
    )


@pytest.fixture
def destination(settings: ConstantContactSettings) -> ConstantContact:
    return ConstantContact(settings)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30.0) as client:
        yield client


@dataclass
class Reporter:
    """A RunReporter that remembers what the run was told."""

    waits: list[tuple[str, dt.datetime | None]] = field(default_factory=list)

    async def waiting(self, reason: str, until: dt.datetime | None = None) -> None:
        self.waits.append((reason, until))

    def cancelled(self) -> bool:
        return False


@dataclass
class Sleeps:
    """A ctx.sleep that returns at once (backoff in tests must not cost time) and records."""

    seconds: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)
        await asyncio.sleep(0)


def tokens_from(answer: dict[str, Any]) -> OAuthTokens:
    return OAuthTokens(
        access_token=answer["access_token"],
        refresh_token=answer.get("refresh_token"),
        expires_at=access_token_expiry(answer["access_token"], answer.get("expires_in")),
        scope=answer.get("scope"),
    )


def make_context(
    fake: RunningFake,
    destination: ConstantContact,
    http: httpx.AsyncClient,
    *,
    limiter: RateLimiter | None = None,
    sleep: Sleeps | None = None,
    reporter: Reporter | None = None,
    list_id: str = GENERAL_LIST,
) -> DestinationContext:
    """A context with tokens the fake issued, the real credential source (which refreshes
    through the destination) and the real in-process rate limiter."""
    credentials = PendingCredentials(destination, tokens_from(fake.state.issue_tokens()), {})
    ctx = DestinationContext(
        http=http,
        rate_limiter=limiter or MemoryRateLimiter(destination.key, destination.limits),
        credentials=credentials,
        connection_settings={},
        export_settings={"listId": list_id},
        reporter=reporter,
        sleep=sleep or Sleeps(),
    )
    credentials.ctx = ctx
    return ctx


class VirtualClock:
    """Time for a rate limiter that passes only when the limiter sleeps: the real limiter's
    logic, without spending real seconds in tests that are not about the rate."""

    def __init__(self) -> None:
        self.now = time.time()  # real dates, so a pause until next midnight is hours away

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


def instant_limiter(destination: ConstantContact) -> MemoryRateLimiter:
    clock = VirtualClock()
    return MemoryRateLimiter(destination.key, destination.limits, clock=clock, sleep=clock.sleep)


def fast_context(
    fake: RunningFake, destination: ConstantContact, http: httpx.AsyncClient, **kwargs: Any
) -> DestinationContext:
    """A context for tests that are not about the request rate: the real limiter on a
    virtual clock, and the fake's per-second limit lifted to match."""
    fake.state.configure(requests_per_second=10_000)
    return make_context(fake, destination, http, limiter=instant_limiter(destination), **kwargs)
