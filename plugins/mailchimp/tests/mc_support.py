"""Helpers for the Mailchimp plugin's tests: a fresh fake per test, real HTTP, and contexts
built with segport's public testing kit (:mod:`service.plugins.testing`).

Test modules import the fixtures from here (a module with its own name, not a
``conftest``, so it sits beside the repository's other plugin tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import httpx
import pytest
from segport_mailchimp import Mailchimp, MailchimpSettings
from segport_mailchimp.fake import DEMO_API_KEY, NEWSLETTER_LIST_ID, RunningFake, run_fake

from service.plugins import DestinationContext, RateLimiter
from service.plugins.testing import InMemoryCredentials, InstantSleep, make_context

EXPORT = {"listId": NEWSLETTER_LIST_ID, "statusIfNew": "subscribed"}


@pytest.fixture
def fake() -> Iterator[RunningFake]:
    with run_fake(seed=13) as running:
        yield running


@pytest.fixture
def settings(fake: RunningFake) -> MailchimpSettings:
    return MailchimpSettings(
        api_base_url=fake.api_base_url,
        backoff_base_seconds=0.01,
        backoff_max_seconds=0.05,
        batch_poll_initial_seconds=0.01,
        batch_poll_max_seconds=0.05,
    )


@pytest.fixture
def destination(settings: MailchimpSettings) -> Mailchimp:
    return Mailchimp(settings)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30.0) as client:
        yield client


def context(
    destination: Mailchimp,
    http: httpx.AsyncClient,
    *,
    api_key: str = DEMO_API_KEY,
    export_settings: Mapping[str, Any] | None = None,
    limiter: RateLimiter | None = None,
    sleep: InstantSleep | None = None,
) -> DestinationContext:
    """The context the service would give the destination for a connection holding
    ``api_key`` (and, unless told otherwise, an export to the fake's Newsletter)."""
    return make_context(
        destination,
        http,
        credentials=InMemoryCredentials(secrets={"apiKey": api_key}),
        export_settings=EXPORT if export_settings is None else export_settings,
        rate_limiter=limiter,
        sleep=sleep,
    )


def members_of(fake: RunningFake, list_id: str = NEWSLETTER_LIST_ID) -> dict[str, Any]:
    """The audience's active members by lower-cased address."""
    audience = fake.state.audience(list_id)
    return {m.email_address.lower(): m for m in audience.active()}
