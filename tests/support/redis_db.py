"""A test suite's own Redis database (see the table in DEVELOPERS.md), empty before and after."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis

from service.coordination.redis import RedisClient, close_redis

TEST_REDIS_PORT = int(os.environ.get("SEGPORT_TEST_REDIS_PORT", "6379"))
"""The port of the shared test Redis on 127.0.0.1 (``make test`` starts one there when none
answers); another port lets two checkouts run their suites side by side."""


def shared_redis_url(db: int) -> str:
    """The URL of database ``db`` of the shared test Redis (see the table in DEVELOPERS.md)."""
    return f"redis://127.0.0.1:{TEST_REDIS_PORT}/{db}"


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
