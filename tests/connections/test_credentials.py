"""Stored credentials: refresh serialized per connection, lost authorizations, no leaks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis
from segport_constant_contact.fake import RunningFake
from structlog.testing import capture_logs

from service.connections.context import DestinationNotInstalled, destination_context
from service.connections.credentials import StoredCredentials, open_credentials, seal_credentials
from service.coordination.locks import RedisLocks
from service.core import Services
from service.domain import Connection, ConnectionStatus
from service.plugins.api import AuthorizationLost, OAuthTokens
from tests.support.redis_db import flushed_redis, shared_redis_url

from .conftest import TokenRequests, new_connection

REDIS_URL = shared_redis_url(3)
"""Database 3 belongs to the limiter/lock tests and these; flushed before and after."""


async def connected(
    services: Services, fake: RunningFake, *, expires_at: datetime | None = None
) -> tuple[Connection, OAuthTokens]:
    """A connection holding tokens the fake issued (as after an authorization)."""
    issued = fake.state.issue_tokens()
    tokens = OAuthTokens(
        access_token=issued["access_token"],
        refresh_token=issued["refresh_token"],
        expires_at=expires_at or datetime.now(UTC) + timedelta(hours=24),
        scope=issued["scope"],
    )
    connection = await new_connection(services)
    connection.status = ConnectionStatus.CONNECTED
    connection.credentials = seal_credentials(
        services.cipher, tokens=tokens, secrets={"note": "s3cret"}
    )
    await services.store.save_connection(connection)
    return connection, tokens


def credentials_of(services: Services, connection: Connection) -> StoredCredentials:
    destination = services.destinations.get("constant_contact")
    assert destination is not None
    return StoredCredentials(services.destination_access, connection.id, destination)


@pytest.fixture(params=["memory", "redis"])
async def two_workers(
    request: pytest.FixtureRequest, services: Services
) -> AsyncIterator[tuple[Services, Services]]:
    """Two workers' view of the services: one process (shared in-process locks), or two
    processes sharing only the database and Redis (each its own Redis client)."""
    if request.param == "memory":
        yield services, services
        return
    async with flushed_redis(REDIS_URL) as first:
        second = Redis.from_url(REDIS_URL)
        yield (
            replace(services, locks=RedisLocks(first)),
            replace(services, locks=RedisLocks(second)),
        )
        await second.aclose()  # type: ignore[attr-defined]  # types-redis predates aclose()


async def test_concurrent_refreshes_send_one_request_and_share_the_rotated_token(
    services: Services,
    fake: RunningFake,
    token_requests: TokenRequests,
    two_workers: tuple[Services, Services],
) -> None:
    connection, tokens = await connected(services, fake)
    worker_a, worker_b = two_workers
    fake.state.expire_access_tokens()  # both callers just got a 401
    a, b = credentials_of(worker_a, connection), credentials_of(worker_b, connection)

    fresh_a, fresh_b = await asyncio.gather(a.refresh(tokens), b.refresh(tokens))

    assert token_requests.grants("refresh_token") == 1
    assert fresh_a.access_token == fresh_b.access_token != tokens.access_token
    assert fresh_a.refresh_token != tokens.refresh_token, "the fake rotates refresh tokens"
    saved = await services.store.get_connection(connection.id)
    assert saved is not None
    assert saved.status is ConnectionStatus.CONNECTED
    assert open_credentials(services.cipher, saved.credentials).tokens == fresh_a
    ctx = await destination_context(services.destination_access, saved)
    destination = services.destinations.get("constant_contact")
    assert destination is not None
    assert await destination.verify_connection(ctx) == "Fake Outfitters"


async def test_refused_refresh_token_marks_the_connection_for_reauthorization(
    services: Services, fake: RunningFake
) -> None:
    connection, tokens = await connected(services, fake)
    fake.state.refresh_tokens.clear()  # revoked (or spent elsewhere)

    with pytest.raises(AuthorizationLost) as lost:
        await credentials_of(services, connection).refresh(tokens)

    saved = await services.store.get_connection(connection.id)
    assert saved is not None
    assert saved.status is ConnectionStatus.NEEDS_REAUTHORIZATION
    assert saved.status_message == str(lost.value)
    assert "unknown, invalid, or expired refresh token" in saved.status_message


async def test_tokens_about_to_expire_are_refreshed_before_use(
    services: Services, fake: RunningFake, token_requests: TokenRequests
) -> None:
    connection, tokens = await connected(
        services, fake, expires_at=datetime.now(UTC) + timedelta(seconds=30)
    )

    current = await credentials_of(services, connection).tokens()

    assert current.access_token != tokens.access_token
    assert token_requests.grants("refresh_token") == 1
    assert current.expires_at is not None
    assert current.expires_at > datetime.now(UTC) + timedelta(hours=1)


async def test_fresh_tokens_are_used_without_a_refresh(
    services: Services, fake: RunningFake, token_requests: TokenRequests
) -> None:
    connection, tokens = await connected(services, fake)

    assert await credentials_of(services, connection).tokens() == tokens
    assert token_requests.seen == []


async def test_unauthorized_connection_says_an_admin_must_connect_it(
    services: Services, fake: RunningFake
) -> None:
    connection = await new_connection(services, name="Spring campaign")

    with pytest.raises(AuthorizationLost, match="'Spring campaign' is not authorized"):
        await credentials_of(services, connection).tokens()


async def test_secret_settings_come_back_decrypted(services: Services, fake: RunningFake) -> None:
    connection, _ = await connected(services, fake)
    assert await credentials_of(services, connection).secrets() == {"note": "s3cret"}


async def test_context_for_an_uninstalled_destination_names_it(services: Services) -> None:
    connection = await new_connection(services, destination_type="carrier_pigeon")
    with pytest.raises(DestinationNotInstalled, match="carrier_pigeon"):
        await destination_context(services.destination_access, connection)


async def test_context_uses_the_destinations_shared_limiter_and_connection_settings(
    services: Services, fake: RunningFake
) -> None:
    connection, _ = await connected(services, fake)
    connection.settings = {"region": "eu"}

    ctx = await destination_context(
        services.destination_access, connection, export_settings={"listId": "x"}
    )

    destination = services.destinations.get("constant_contact")
    assert destination is not None
    assert ctx.rate_limiter is services.limiters.for_destination(destination)
    assert ctx.connection_settings == {"region": "eu"}
    assert ctx.export_settings == {"listId": "x"}
    assert ctx.http is services.http


async def test_no_token_reaches_the_database_file_or_the_logs(
    services: Services, fake: RunningFake, db_path: Path
) -> None:
    connection = await new_connection(services)
    with capture_logs() as logs:
        url = await services.oauth.start(connection, "alice")
        async with httpx.AsyncClient(follow_redirects=True) as browser:
            assert (await browser.get(url)).status_code == 200
        saved = await services.store.get_connection(connection.id)
        assert saved is not None
        first = open_credentials(services.cipher, saved.credentials).tokens
        assert first is not None
        fake.state.expire_access_tokens()
        second = await credentials_of(services, saved).refresh(first)

    secrets = {
        first.access_token,
        second.access_token,
        first.refresh_token,
        second.refresh_token,
    }
    assert None not in secrets
    raw = b"".join(p.read_bytes() for p in db_path.parent.glob(db_path.name + "*"))
    stored = await services.store.get_connection(connection.id)
    assert stored is not None
    assert stored.credentials is not None
    assert stored.credentials.encode() in raw, "we are reading the right database files"
    logged = repr(logs)
    assert any(line["event"] == "oauth_completed" for line in logs)
    for secret in secrets:
        assert secret is not None
        assert secret.encode() not in raw, "a token is stored in clear"
        assert secret not in logged, "a token was logged"


async def test_limiter_waits_are_recorded_in_the_services_metrics(
    services: Services, fake: RunningFake
) -> None:
    connection, _ = await connected(services, fake)
    ctx = await destination_context(services.destination_access, connection)

    await ctx.rate_limiter.acquire()
    await ctx.rate_limiter.acquire()

    count = services.metrics.registry.get_sample_value(
        "segport_rate_limiter_wait_seconds_count", {"destination": "constant_contact"}
    )
    assert count == 2
