"""SIGTERM on a ``segport worker`` in the middle of a run: checkpoint, exit in time, resume.

Distributed mode with real parts: two worker processes (the real ``run_worker``,
one after the other) and this test share a SQLite file and Redis database 6; the
Constant Contact plugin talks to its fake over HTTP, slowed by the fake's own rate
limit and small batches so the run is still going when the signal arrives.

What "no acknowledged work is lost" means, precisely: after SIGTERM no upload
starts; every upload already under way is waited for (within the completion
wait) and checkpointed with its receipt. So across the restart the fake
acknowledges each contact exactly once: the contacts of all its accepted imports
add up to the number of valid profiles, none re-sent. (A batch whose upload had not
started when the signal came is sent once, by the resumed run.)
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from segport_constant_contact.fake import RunningFake, run_fake
from segport_constant_contact.session import IMPORT_PATH

from service.core import Services
from service.domain import ExportRunStatus, ExportRunTrigger
from tests.runs.cc_world import NEWSLETTER_LIST, cc_profiles, expected_emails, seed_cc_export
from tests.support.redis_db import flushed_redis, shared_redis_url
from tests.support.workers import (
    WorkerProcesses,
    cc_services,
    wait_for_end,
    wait_for_sent,
)

REDIS_URL = shared_redis_url(6)
RATE = 10
BATCH = 25
VALID = 400
SLOW_ANSWER_SECONDS = 1.0
"""The fake answers every API request this late, after it has acted on it: an upload is
then acknowledged by the destination well before its answer reaches the worker, as a
large import is (seconds on the wire)."""
COMPLETION_WAIT_SECONDS = 3
"""Longer than an upload under way needs to be answered (the slow answer plus a rate
slot), shorter than the run."""
EXIT_DEADLINE_SECONDS = COMPLETION_WAIT_SECONDS + 10
"""What a Kubernetes grace period would allow: the completion wait plus a margin."""


@pytest.fixture
def fake() -> Iterator[RunningFake]:
    with run_fake(seed=11, requests_per_second=RATE) as running:
        yield running


@pytest.fixture
async def services(tmp_path: Path, fake: RunningFake) -> AsyncIterator[Services]:
    async with (
        flushed_redis(REDIS_URL),
        cc_services(tmp_path / "shared.db", fake, REDIS_URL, BATCH) as opened,
    ):
        yield opened


@pytest.fixture
def workers(services: Services, fake: RunningFake, tmp_path: Path) -> Iterator[WorkerProcesses]:
    pool = WorkerProcesses(
        services,
        fake,
        batch=BATCH,
        requests_per_second=RATE,
        completion_wait_seconds=COMPLETION_WAIT_SECONDS,
        log_level="INFO",
        log_dir=tmp_path,
    )
    yield pool
    pool.stop_all()


def acknowledged_contacts(fake: RunningFake) -> int:
    """Contacts in every import the fake accepted (answered 201), repeats included."""
    return sum(
        request.record_count or 0
        for request in fake.state.request_log
        if request.method == "POST" and request.path.endswith(IMPORT_PATH) and request.status == 201
    )


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
    fake.state.configure(slow_share=1.0, slow_seconds=SLOW_ANSWER_SECONDS)
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
    # Every import the destination acknowledged before the signal is in the checkpoint.
    assert acknowledged_contacts(fake) == stopped.counts.contacts_sent

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
    # Nothing the destination acknowledged was sent again by the resumed run.
    assert acknowledged_contacts(fake) == VALID
