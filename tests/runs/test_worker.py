"""Distributed mode: arq workers as separate processes on real Redis (database 5).

A worker SIGKILLed in the middle of a run leaves it RUNNING with a stale
heartbeat; another worker's tick notices, resumes it from its checkpoint, and
the counts come out exactly as if nothing had happened, a mirror run's removals
and the list it leaves included.
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from segport_constant_contact.fake import RunningFake, run_fake

from service.core import Services
from service.domain import ExportRunStatus, ExportRunTrigger, Profile, SyncMode
from tests.runs.cc_world import NEWSLETTER_LIST, cc_profiles, expected_emails, seed_cc_export
from tests.support.redis_db import flushed_redis, shared_redis_url
from tests.support.workers import (
    WorkerProcesses,
    cc_services,
    wait_for_end,
    wait_for_sent,
)

REDIS_URL = shared_redis_url(5)
RATE = 10
BATCH = 25


@pytest.fixture
def fake() -> Iterator[RunningFake]:
    with run_fake(seed=3, requests_per_second=RATE) as running:
        yield running


@pytest.fixture
async def services(tmp_path: Path, fake: RunningFake) -> AsyncIterator[Services]:
    async with (
        flushed_redis(REDIS_URL),
        cc_services(tmp_path / "dist.db", fake, REDIS_URL, BATCH) as opened,
    ):
        yield opened


@pytest.fixture
def workers(services: Services, fake: RunningFake) -> Iterator[WorkerProcesses]:
    pool = WorkerProcesses(services, fake, batch=BATCH, requests_per_second=RATE)
    yield pool
    pool.stop_all()


async def test_a_worker_process_carries_a_run_to_success(
    services: Services, fake: RunningFake, workers: WorkerProcesses
) -> None:
    export = await seed_cc_export(services, fake, cc_profiles(60))
    workers.start()

    run = await services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "alice")
    done = await wait_for_end(services, run.id)

    assert done.status is ExportRunStatus.SUCCEEDED, done.message
    assert done.counts.contacts_sent == 60
    assert fake.state.list_members(NEWSLETTER_LIST) == expected_emails(60)


async def test_a_run_of_a_sigkilled_worker_is_resumed_by_another_with_exact_counts(
    services: Services, fake: RunningFake, workers: WorkerProcesses
) -> None:
    export = await seed_cc_export(services, fake, cc_profiles(400))
    first = workers.start()
    run = await services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "alice")
    await wait_for_sent(services, run.id, 3 * BATCH)
    first.send_signal(signal.SIGKILL)
    first.wait()
    killed = await services.store.get_run(run.id)
    assert killed is not None
    assert killed.status is ExportRunStatus.RUNNING
    assert killed.counts.contacts_sent < 400

    workers.start()
    done = await wait_for_end(services, run.id)

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


async def test_a_sigkilled_worker_mid_mirror_run_is_resumed_with_exact_counts_and_list(
    services: Services, fake: RunningFake, workers: WorkerProcesses
) -> None:
    profiles = cc_profiles(400)
    export = await seed_cc_export(services, fake, profiles, sync_mode=SyncMode.MIRROR)
    workers.start()
    first = await services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "alice")
    assert (await wait_for_end(services, first.id)).status is ExportRunStatus.SUCCEEDED
    # 200 change, 10 join, 20 leave (the 3 invalid and duplicate profiles stay as they were).
    [segment] = export.segment_ids
    changed = [
        Profile(id=p.id, attributes={**p.attributes, "FirstName": "Changed"}, segment_ids=[segment])
        for p in profiles[:200]
    ]
    joined = [
        Profile(
            id=f"p{i:06d}",
            attributes={"EmailAddress": f"Contact{i}@Example.com"},
            segment_ids=[segment],
        )
        for i in range(400, 410)
    ]
    left = [Profile(id=p.id, attributes=p.attributes, segment_ids=[]) for p in profiles[300:320]]
    await services.store.upsert_profiles([*changed, *joined, *left])

    run = await services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "alice")
    await wait_for_sent(services, run.id, 2 * BATCH)
    workers.processes[0].send_signal(signal.SIGKILL)
    workers.processes[0].wait()
    killed = await services.store.get_run(run.id)
    assert killed is not None
    assert killed.status is ExportRunStatus.RUNNING
    # Killed before it was done: imports still to confirm, or leavers still to remove.
    assert killed.counts.removed_from_list < 20
    workers.start()
    done = await wait_for_end(services, run.id)

    assert done.status is ExportRunStatus.SUCCEEDED, done.message
    c = done.counts
    assert (c.profiles_read, c.contacts_sent, c.skipped_unchanged) == (393, 210, 180)
    assert (c.skipped_invalid, c.skipped_duplicate) == (2, 1)
    assert (c.removed_from_list, c.removals_failed) == (20, 0)
    assert c.accepted_by_destination == 210
    staying = set(range(300)) | set(range(320, 410))
    assert fake.state.list_members(NEWSLETTER_LIST) == {f"contact{i}@example.com" for i in staying}
