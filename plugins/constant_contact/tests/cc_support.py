"""Helpers for the Constant Contact plugin's tests: a fresh fake server per test, real HTTP,
and contexts built with segport's public testing kit (:mod:`service.plugins.testing`).

A module with its own name (not ``conftest``) so tests can import it beside the
repository's other conftest modules."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from segport_constant_contact import ConstantContact, ConstantContactSettings
from segport_constant_contact.fake import GENERAL_INTEREST_LIST_ID, RunningFake, run_fake
from segport_constant_contact.oauth import access_token_expiry

from service.plugins import DestinationContext, OAuthTokens, RateLimiter
from service.plugins.testing import (
    InMemoryRateLimiter,
    InstantSleep,
    RecordingReporter,
    VirtualClock,
    make_context,
)

GENERAL_LIST = GENERAL_INTEREST_LIST_ID
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


def tokens_from(answer: dict[str, Any]) -> OAuthTokens:
    return OAuthTokens(
        access_token=answer["access_token"],
        refresh_token=answer.get("refresh_token"),
        expires_at=access_token_expiry(answer["access_token"], answer.get("expires_in")),
        scope=answer.get("scope"),
    )


def fake_context(
    fake: RunningFake,
    destination: ConstantContact,
    http: httpx.AsyncClient,
    *,
    limiter: RateLimiter | None = None,
    sleep: InstantSleep | None = None,
    reporter: RecordingReporter | None = None,
    list_id: str = GENERAL_LIST,
) -> DestinationContext:
    """A context with tokens the fake issued (refreshed through the destination) and, unless
    given, the destination's declared limits in real time."""
    return make_context(
        destination,
        http,
        tokens=tokens_from(fake.state.issue_tokens()),
        rate_limiter=limiter,
        export_settings={"listId": list_id},
        reporter=reporter,
        sleep=sleep,
    )


def instant_limiter(destination: ConstantContact) -> InMemoryRateLimiter:
    """The destination's limits on a virtual clock: the rate logic, without real waits."""
    clock = VirtualClock()
    return InMemoryRateLimiter(destination.limits, clock=clock, sleep=clock.sleep)


def fast_context(
    fake: RunningFake, destination: ConstantContact, http: httpx.AsyncClient, **kwargs: Any
) -> DestinationContext:
    """A context for tests that are not about the request rate: the limiter on a virtual
    clock, and the fake's per-second limit lifted to match."""
    fake.state.configure(requests_per_second=10_000)
    return fake_context(fake, destination, http, limiter=instant_limiter(destination), **kwargs)
