"""Distributed mode: arq workers as separate processes on real Redis (database 5).

A worker SIGKILLed in the middle of a run leaves it RUNNING with a stale
heartbeat; another worker's tick notices, resumes it from its checkpoint, and
the counts come out exactly as if nothing had happened.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from redis.asyncio import Redis
from segport_constant_contact import ConstantContact
from segport_constant_contact.fake import RunningFake, run_fake

from service.core import Services, open_services
from service.domain import ExportRun, ExportRunStatus, ExportRunTrigger
from service.runs.events import follow_run
from tests.runs.cc_world import (
    NEWSLETTER_LIST,
    ConstantContactPlugin,
    cc_profiles,
    expected_emails,
    fast_cc_environment,
    fast_cc_settings,
    seed_cc_export,
)
from tests.support.settings import TEST_ENCRYPTION_KEY, TEST_JWT_SECRET, make_settings

REDIS_URL = "redis://127.0.0.1:6379/5"
ROOT = Path(__file__).resolve().parents[2]
RATE = 10
BATCH = 25


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def fake() -> Iterator[RunningFake]:
    with run_fake(seed=3, requests_per_second=RATE) as running:
        yield running


@pytest.fixture
async def redis_db() -> AsyncIterator[None]:
    redis = Redis.from_url(REDIS_URL)
    await redis.flushdb()
    yield
    await redis.flushdb()
    await redis.aclose()


@pytest.fixture
async def services(tmp_path: Path, fake: RunningFake, redis_db: None) -> AsyncIterator[Services]:
    destination = ConstantContact(fast_cc_settings(fake))
    destination.limits = replace(destination.limits, batch_max_records=BATCH)
    settings = make_settings(f"sqlite:///{tmp_path / 'dist.db'}", redis_url=REDIS_URL)
    async with open_services(
        settings, extra_plugins=[ConstantContactPlugin(destination)], load_entry_points=False
    ) as opened:
        yield opened


class Workers:
    def __init__(self, services: Services, fake: RunningFake) -> None:
        self.env = {
            **os.environ,
            **fast_cc_environment(fake),
            "SEGPORT_DATABASE_URL": services.settings.database_url,
            "SEGPORT_REDIS_URL": REDIS_URL,
            "SEGPORT_JWT_SECRET": TEST_JWT_SECRET,
            "SEGPORT_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
            "SEGPORT_RUN_HEARTBEAT_SECONDS": "0.3",
            "SEGPORT_SCHEDULE_TICK_SECONDS": "0.3",
            "SEGPORT_JOB_COMPLETION_WAIT_SECONDS": "0",
            "SEGPORT_LOG_LEVEL": "WARNING",
            "TEST_BATCH_MAX_RECORDS": str(BATCH),
            "TEST_REQUESTS_PER_SECOND": str(RATE),
        }
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.runs.worker_process"],
            cwd=ROOT,
            env={**self.env, "SEGPORT_WORKER_METRICS_PORT": str(free_port())},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.processes.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def workers(services: Services, fake: RunningFake) -> Iterator[Workers]:
    pool = Workers(services, fake)
    yield pool
    pool.stop_all()


async def wait_for(services: Services, run_id: str, timeout: float = 60) -> ExportRun:
    async def follow() -> ExportRun:
        last = None
        async for run in follow_run(services.store, services.events, run_id, recheck_seconds=1):
            last = run
        assert last is not None
        return last

    return await asyncio.wait_for(follow(), timeout)


async def test_a_worker_process_carries_a_run_to_success(
    services: Services, fake: RunningFake, workers: Workers
) -> None:
    export = await seed_cc_export(services, fake, cc_profiles(60))
    workers.start()

    run = await services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "alice")
    done = await wait_for(services, run.id)

    assert done.status is ExportRunStatus.SUCCEEDED, done.message
    assert done.counts.contacts_sent == 60
    assert fake.state.list_members(NEWSLETTER_LIST) == expected_emails(60)


async def test_a_run_of_a_sigkilled_worker_is_resumed_by_another_with_exact_counts(
    services: Services, fake: RunningFake, workers: Workers
) -> None:
    export = await seed_cc_export(services, fake, cc_profiles(400))
    first = workers.start()
    run = await services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "alice")

    async def some_sent() -> None:
        while True:
            current = await services.store.get_run(run.id)
            assert current is not None
            if current.counts.contacts_sent >= 3 * BATCH:
                return
            await asyncio.sleep(0.05)

    await asyncio.wait_for(some_sent(), 30)
    first.send_signal(signal.SIGKILL)
    first.wait()
    killed = await services.store.get_run(run.id)
    assert killed is not None
    assert killed.status is ExportRunStatus.RUNNING
    assert killed.counts.contacts_sent < 400

    workers.start()
    done = await wait_for(services, run.id)

    assert done.status is ExportRunStatus.SUCCEEDED, done.message
    c = done.counts
    assert (c.profiles_read, c.contacts_sent, c.skipped_invalid, c.skipped_duplicate) == (
        403,
        400,
        2,
        1,
    )
    assert c.accepted_by_destination == 400
    assert done.attempt == 2
    assert fake.state.list_members(NEWSLETTER_LIST) == expected_emails(400)
