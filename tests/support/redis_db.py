"""A test suite's own Redis database (see the table in DEVELOPERS.md), empty before and after."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis

from service.coordination.redis import RedisClient, close_redis


@asynccontextmanager
async def flushed_redis(redis_url: str) -> AsyncIterator[RedisClient]:
    """A client of the database of ``redis_url``, flushed on entry and on exit (only that
    database: each suite has its own number)."""
    redis: RedisClient = Redis.from_url(redis_url)
    await redis.flushdb()
    try:
        yield redis
    finally:
        await redis.flushdb()
        await close_redis(redis)
