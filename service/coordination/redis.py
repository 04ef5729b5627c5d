"""The one Redis client of a process (distributed mode), made from ``SEGPORT_REDIS_URL``.

:func:`service.core.open_services` creates it once when the URL is set and
closes it on shutdown; the shared rate limiter, the refresh locks and other
Redis adapters all use it through ``services.redis``. Replies are bytes
(``decode_responses`` off), the redis-py default.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

if TYPE_CHECKING:
    RedisClient: TypeAlias = Redis[bytes]
else:
    RedisClient: TypeAlias = Redis


REDIS_UNAVAILABLE: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError)
"""What a call raises while Redis is away (restarting, failing over, unreachable): worth
waiting for, never a reason to give up on what Redis only coordinates."""


def connect_redis(url: str) -> RedisClient:
    """A client for ``url`` (``redis://host:port/db``); connections are made lazily."""
    client: RedisClient = Redis.from_url(url, health_check_interval=30)
    return client


async def close_redis(client: RedisClient) -> None:
    """Close the client's connection pool."""
    # types-redis 4.6 predates ``aclose`` (redis-py 5); ``close`` is deprecated there.
    await client.aclose()  # type: ignore[attr-defined]


__all__ = ["REDIS_UNAVAILABLE", "RedisClient", "close_redis", "connect_redis"]
