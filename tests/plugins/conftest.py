"""Fixtures for the toy destination: a real collector server, and the context the service
would hand the destination, built with the public testing kit."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from segport_toy_destination.destination import WebhookCollector

from service.plugins.testing import discover_destinations
from tests.plugins.toy_collector import CollectorState, serve_collector
from tests.plugins.toy_context import ContextFactory, toy_context_factory


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


@pytest.fixture
def toy(toy_env: str) -> WebhookCollector:
    """The toy destination as the service finds it: through its entry point."""
    destination = discover_destinations().get("toy_webhook")
    assert isinstance(destination, WebhookCollector)
    return destination


@pytest.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.fixture
def toy_context(toy: WebhookCollector, http_client: httpx.AsyncClient) -> ContextFactory:
    """Makes the context the service would hand the toy destination for one export: its
    declared limits on a virtual clock (no real waits), its API key, an instant sleep."""

    return toy_context_factory(toy, http_client)
