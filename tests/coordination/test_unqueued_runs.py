"""A run asked for while the queue's Redis is away: stored QUEUED, saying why nothing runs it,
and enqueued by the recovery sweep once Redis answers again.

Distributed mode's parts in this process: a SQLite store, this test's own
``redis-server`` (stopped, then started again), the arq queue adapter.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from arq.constants import default_queue_name

from service.coordination.queue import job_id
from service.coordination.redis import close_redis, connect_redis
from service.coordination.run_requests import QUEUE_UNAVAILABLE_MESSAGE
from service.core import Services, open_services
from service.domain import ExportRunStatus, ExportRunTrigger, FieldMapping
from service.runs.recovery import recover_runs, stale_after_seconds
from tests.support.records import make_plain_connection, make_plain_export, make_segment
from tests.support.redis_server import RedisServer, redis_server
from tests.support.settings import make_settings


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path) as server:
        yield server


@pytest.fixture
async def services(tmp_path: Path, redis: RedisServer) -> AsyncIterator[Services]:
    settings = make_settings(f"sqlite:///{tmp_path / 'runs.db'}", redis_url=redis.url())
    async with open_services(settings, load_entry_points=False) as opened:
        yield opened


async def queued_job_ids(redis: RedisServer) -> set[str]:
    client = connect_redis(redis.url())
    try:
        return {raw.decode() for raw in await client.zrange(default_queue_name, 0, -1)}
    finally:
        await close_redis(client)


async def test_a_run_that_could_not_be_enqueued_says_so_and_the_sweep_enqueues_it(
    services: Services, redis: RedisServer
) -> None:
    connection = make_plain_connection("memory", "Memory account")
    await services.store.save_connection(connection)
    segment = make_segment()
    await services.store.save_segment(segment)
    export = make_plain_export(
        connection, [segment.id], [FieldMapping(source="EmailAddress", target="email")]
    )
    await services.store.save_export(export)

    redis.stop()
    run = await services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "alice")

    assert run.status is ExportRunStatus.QUEUED
    assert run.message == QUEUE_UNAVAILABLE_MESSAGE
    stored = await services.store.get_run(run.id)
    assert stored is not None
    assert (stored.status, stored.message) == (ExportRunStatus.QUEUED, QUEUE_UNAVAILABLE_MESSAGE)
    # A sweep while Redis is still away changes nothing, and does not raise.
    ctx = services.run_context
    await recover_runs(ctx, stale_after_seconds(ctx.settings))

    redis.start()
    assert job_id(run.id) not in await queued_job_ids(redis)  # an empty Redis: no job
    await recover_runs(ctx, stale_after_seconds(ctx.settings))

    assert job_id(run.id) in await queued_job_ids(redis)
