"""Fixtures for the toy destination: a real collector server and a context to call it with."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from toy_collector import API_KEY, CollectorState, serve_collector

from service.plugins import DestinationContext, OAuthTokens


@pytest.fixture(scope="session")
def collector_state() -> CollectorState:
    return CollectorState()


@pytest.fixture(scope="session")
def collector_url(collector_state: CollectorState) -> Iterator[str]:
    with serve_collector(collector_state) as url:
        yield url


@pytest.fixture
def collector(collector_state: CollectorState, collector_url: str) -> CollectorState:
    collector_state.received.clear()
    collector_state.fail_next.clear()
    collector_state.requests = 0
    return collector_state


@pytest.fixture
def toy_env(collector_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the toy plugin at the collector (read when its destinations are registered)."""
    monkeypatch.setenv("SEGPORT_TOY_WEBHOOK_URL", collector_url)
    return collector_url


class UnlimitedRateLimiter:
    """Lets every request through at once; counts them."""

    def __init__(self) -> None:
        self.acquired = 0

    async def acquire(self) -> float:
        self.acquired += 1
        return 0.0

    async def pause_until(self, until: datetime, reason: str) -> None:
        return None


class ApiKeyCredentials:
    def __init__(self, api_key: str) -> None:
        self.api_key = api_key

    async def tokens(self) -> OAuthTokens:
        raise AssertionError("an api_key destination never asks for OAuth tokens")

    async def refresh(self, stale: OAuthTokens) -> OAuthTokens:
        raise AssertionError("an api_key destination never refreshes tokens")

    async def secrets(self) -> dict[str, Any]:
        return {"apiKey": self.api_key}


async def _no_sleep(seconds: float) -> None:
    return None


@pytest.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


ContextFactory = Callable[..., DestinationContext]


@pytest.fixture
def toy_context(http_client: httpx.AsyncClient) -> ContextFactory:
    """Makes the context the service would hand the toy destination for one export."""

    def make(*, api_key: str = API_KEY, endpoint: str = "newsletter") -> DestinationContext:
        return DestinationContext(
            http=http_client,
            rate_limiter=UnlimitedRateLimiter(),
            credentials=ApiKeyCredentials(api_key),
            connection_settings={},
            export_settings={"endpoint": endpoint},
            sleep=_no_sleep,
        )

    return make
