"""Distributed mode across a Redis restart: the worker reconnects, and a run whose enqueue
failed says so and is enqueued by the recovery sweep once Redis is back.

Real parts: this test's own ``redis-server`` (stopped and started again on the same
port, empty after the restart like any Redis without persistence), a real ``segport
worker`` process, a SQLite file shared with it, the app served over HTTP for
``runExport``, and the Constant Contact plugin against its fake over HTTP.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from segport_constant_contact.fake import RunningFake, run_fake

from service.api.ids import from_global_id, to_global_id
from service.coordination.run_requests import QUEUE_UNAVAILABLE_MESSAGE
from service.core import Services
from service.domain import ExportRun, ExportRunStatus, ExportRunTrigger, Role
from tests.runs.cc_world import cc_profiles, seed_cc_export
from tests.support.redis_server import RedisServer, redis_server
from tests.support.served import graphql_text, served
from tests.support.workers import WorkerProcesses, cc_services

RUN_EXPORT = """
mutation($exportId: ID!) {
  runExport(input: {exportId: $exportId}) {
    exportRun { id status message }
    userErrors { code message }
  }
}
"""
RATE = 20
BATCH = 25


@pytest.fixture
def fake() -> Iterator[RunningFake]:
    with run_fake(seed=13, requests_per_second=RATE) as running:
        yield running


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path) as server:
        yield server


@pytest.fixture
async def services(
    tmp_path: Path, fake: RunningFake, redis: RedisServer
) -> AsyncIterator[Services]:
    async with cc_services(tmp_path / "shared.db", fake, redis.url(), BATCH) as opened:
        yield opened


@pytest.fixture
def workers(services: Services, fake: RunningFake, tmp_path: Path) -> Iterator[WorkerProcesses]:
    pool = WorkerProcesses(
        services, fake, batch=BATCH, requests_per_second=RATE, log_level="INFO", log_dir=tmp_path
    )
    yield pool
    pool.stop_all()


async def until_ended(services: Services, run_id: str, timeout: float = 60) -> ExportRun:
    """The run's terminal state, read from the store (pub/sub does not outlive a restart)."""

    async def poll() -> ExportRun:
        while True:
            run = await services.store.get_run(run_id)
            assert run is not None
            if run.status.is_terminal:
                return run
            await asyncio.sleep(0.1)

    return await asyncio.wait_for(poll(), timeout)


async def until_logged(workers: WorkerProcesses, event: str, timeout: float = 30) -> None:
    """Until the first worker process has logged ``event`` (twice: it kept trying)."""

    async def poll() -> None:
        while workers.logs(0).count(event) < 2:
            assert workers.processes[0].poll() is None, workers.logs(0)
            await asyncio.sleep(0.1)

    await asyncio.wait_for(poll(), timeout)


async def test_a_worker_outlives_a_redis_restart_and_the_sweep_enqueues_what_could_not_be(
    services: Services, fake: RunningFake, redis: RedisServer, workers: WorkerProcesses
) -> None:
    export = await seed_cc_export(services, fake, cc_profiles(50))
    worker = workers.start()
    before = await services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "alice")
    assert (await until_ended(services, before.id)).status is ExportRunStatus.SUCCEEDED

    redis.stop()
    # Asked over HTTP while Redis is away: stored, and saying why nothing runs it yet.
    async with served(services) as url:
        answer = json.loads(
            await graphql_text(
                services,
                url,
                RUN_EXPORT,
                {"exportId": to_global_id("Export", export.id)},
                Role.ADMIN,
            )
        )
    payload = answer["data"]["runExport"]
    assert payload["userErrors"] == []
    assert payload["exportRun"]["status"] == "QUEUED"
    assert payload["exportRun"]["message"] == QUEUE_UNAVAILABLE_MESSAGE
    waiting = from_global_id(payload["exportRun"]["id"])[1]
    stored = await services.store.get_run(waiting)
    assert stored is not None
    assert stored.message == QUEUE_UNAVAILABLE_MESSAGE
    await until_logged(workers, "worker_redis_unavailable")
    assert worker.poll() is None, workers.logs(0)

    redis.start()
    # The sweep of the same worker process enqueues the run, and the worker carries it.
    done = await until_ended(services, waiting)
    assert done.status is ExportRunStatus.SUCCEEDED, done.message
    assert done.message is None
    assert done.counts.contacts_sent == 50
    after = await services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "alice")
    assert (await until_ended(services, after.id)).status is ExportRunStatus.SUCCEEDED
    assert worker.poll() is None, workers.logs(0)
    assert len(workers.processes) == 1
