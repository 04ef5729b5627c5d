"""Fixtures for the limiter and lock tests: a private Redis database and a fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime

import pytest
from redis.asyncio import Redis

from service.coordination.redis import RedisClient, close_redis
from tests.support.redis_db import flushed_redis, shared_redis_url

REDIS_URL = shared_redis_url(3)
"""Database 3 belongs to these tests; the fixture flushes only it."""


@pytest.fixture
async def redis_db() -> AsyncIterator[RedisClient]:
    async with flushed_redis(REDIS_URL) as client:
        yield client


@pytest.fixture
async def second_redis_client(redis_db: RedisClient) -> AsyncIterator[RedisClient]:
    """Another connection to the same database: what a second worker process has."""
    client: RedisClient = Redis.from_url(REDIS_URL)
    yield client
    await close_redis(client)


class FakeClock:
    """Epoch seconds that only move when something sleeps on it."""

    def __init__(self, start: datetime) -> None:
        self.now = start.timestamp()
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)
