"""The context the service would hand the toy destination, made with the public testing kit."""

from __future__ import annotations

from typing import Protocol

import httpx
from segport_toy_destination.destination import WebhookCollector

from service.plugins import DestinationContext
from service.plugins.testing import InMemoryRateLimiter, VirtualClock, make_context
from tests.plugins.toy_collector import API_KEY


class ContextFactory(Protocol):
    """Makes one export's context (the ``toy_context`` fixture)."""

    def __call__(
        self, *, api_key: str = API_KEY, endpoint: str = "newsletter"
    ) -> DestinationContext: ...


def toy_context_factory(toy: WebhookCollector, http: httpx.AsyncClient) -> ContextFactory:
    """Contexts with the toy's declared limits on a virtual clock (no real waits), the given
    API key as the connection's secret, and an instant sleep."""

    def make(*, api_key: str = API_KEY, endpoint: str = "newsletter") -> DestinationContext:
        clock = VirtualClock()
        return make_context(
            toy,
            http,
            secrets={"apiKey": api_key},
            rate_limiter=InMemoryRateLimiter(toy.limits, clock=clock, sleep=clock.sleep),
            export_settings={"endpoint": endpoint},
        )

    return make
