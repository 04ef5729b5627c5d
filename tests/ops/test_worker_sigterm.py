"""SIGTERM on a ``segport worker`` in the middle of a run: checkpoint, exit in time, resume.

Distributed mode with real parts: two worker processes (the real ``run_worker``,
one after the other) and this test share a SQLite file and Redis database 6; the
Constant Contact plugin talks to its fake over HTTP, slowed by the fake's own rate
limit and small batches so the run is still going when the signal arrives.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
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

REDIS_URL = "redis://127.0.0.1:6379/6"
ROOT = Path(__file__).resolve().parents[2]
RATE = 10
BATCH = 25
VALID = 400
COMPLETION_WAIT_SECONDS = 1
EXIT_DEADLINE_SECONDS = COMPLETION_WAIT_SECONDS + 10
"""What a Kubernetes grace period would allow: the completion wait plus a margin."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def fake() -> Iterator[RunningFake]:
    with run_fake(seed=11, requests_per_second=RATE) as running:
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
    settings = make_settings(f"sqlite:///{tmp_path / 'shared.db'}", redis_url=REDIS_URL)
    async with open_services(
        settings, extra_plugins=[ConstantContactPlugin(destination)], load_entry_points=False
    ) as opened:
        yield opened


class WorkerProcesses:
    """``segport worker`` processes (the real arq worker) sharing the test's store and Redis."""

    def __init__(self, services: Services, fake: RunningFake, log_dir: Path) -> None:
        self.env = {
            **os.environ,
            **fast_cc_environment(fake),
            "SEGPORT_DATABASE_URL": services.settings.database_url,
            "SEGPORT_REDIS_URL": REDIS_URL,
            "SEGPORT_JWT_SECRET": TEST_JWT_SECRET,
            "SEGPORT_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
            "SEGPORT_RUN_HEARTBEAT_SECONDS": "0.3",
            "SEGPORT_SCHEDULE_TICK_SECONDS": "0.3",
            "SEGPORT_JOB_COMPLETION_WAIT_SECONDS": str(COMPLETION_WAIT_SECONDS),
            "SEGPORT_LOG_LEVEL": "INFO",
            "TEST_BATCH_MAX_RECORDS": str(BATCH),
            "TEST_REQUESTS_PER_SECOND": str(RATE),
        }
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"worker-{len(self.processes)}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.runs.worker_process"],
            cwd=ROOT,
            env={**self.env, "SEGPORT_WORKER_METRICS_PORT": str(free_port())},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        return process

    def logs(self, index: int) -> str:
        return (self.log_dir / f"worker-{index}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.fixture
def workers(services: Services, fake: RunningFake, tmp_path: Path) -> Iterator[WorkerProcesses]:
    pool = WorkerProcesses(services, fake, tmp_path)
    yield pool
    pool.stop_all()


async def wait_for_end(services: Services, run_id: str, timeout: float = 60) -> ExportRun:
    async def follow() -> ExportRun:
        last = None
        async for run in follow_run(services.store, services.events, run_id, recheck_seconds=1):
            last = run
        assert last is not None
        return last

    return await asyncio.wait_for(follow(), timeout)


async def wait_for_sent(services: Services, run_id: str, at_least: int) -> None:
    async def poll() -> None:
        while True:
            current = await services.store.get_run(run_id)
            assert current is not None
            assert not current.status.is_terminal, current.message
            if current.counts.contacts_sent >= at_least:
                return
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), 30)


async def wait_for_exit(process: subprocess.Popen[bytes], deadline_seconds: float) -> int | None:
    """The exit status, or None when the process is still running after the deadline."""
    deadline = time.monotonic() + deadline_seconds
    while process.poll() is None and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return process.poll()


async def test_a_sigtermed_worker_checkpoints_exits_in_time_and_another_finishes_the_run(
    services: Services, fake: RunningFake, workers: WorkerProcesses
) -> None:
    export = await seed_cc_export(services, fake, cc_profiles(VALID))
    first = workers.start()
    run = await services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "alice")
    await wait_for_sent(services, run.id, 3 * BATCH)

    first.send_signal(signal.SIGTERM)
    status = await wait_for_exit(first, EXIT_DEADLINE_SECONDS)

    assert status is not None, "the worker did not exit within the grace period"
    assert "Traceback" not in workers.logs(0), workers.logs(0)
    stopped = await services.store.get_run(run.id)
    assert stopped is not None
    # Resumable, not failed: RUNNING, released (no heartbeat), with a checkpoint.
    assert stopped.status is ExportRunStatus.RUNNING, stopped.message
    assert stopped.checkpoint.get("heartbeat_at") is None
    last_profile_id = stopped.checkpoint.get("last_profile_id")
    assert last_profile_id is not None
    # The counts describe exactly the profiles up to the checkpoint.
    checkpointed = [f"p{i:06d}" for i in range(VALID) if f"p{i:06d}" <= last_profile_id]
    assert stopped.counts.profiles_read == len(checkpointed)
    assert stopped.counts.contacts_sent == len(checkpointed)
    assert 3 * BATCH <= stopped.counts.contacts_sent < VALID
    assert stopped.attempt == 1

    workers.start()
    done = await wait_for_end(services, run.id)

    assert done.status is ExportRunStatus.SUCCEEDED, done.message
    c = done.counts
    assert (c.profiles_read, c.contacts_sent, c.skipped_invalid, c.skipped_duplicate) == (
        VALID + 3,
        VALID,
        2,
        1,
    )
    assert c.accepted_by_destination == VALID
    assert c.rejected_by_destination == 0
    assert done.attempt == 2
    assert fake.state.list_members(NEWSLETTER_LIST) == expected_emails(VALID)
