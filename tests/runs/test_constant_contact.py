"""Runs through the real Constant Contact plugin against its fake server (real HTTP)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from segport_constant_contact import ConstantContact
from segport_constant_contact.fake import RunningFake, run_fake

from service.coordination.events import follow_run
from service.core import Services, open_services
from service.domain import ExportRunStatus, ExportRunTrigger
from service.runs.lifecycle import execute_run
from tests.runs.cc_world import (
    NEWSLETTER_LIST,
    ConstantContactPlugin,
    cc_profiles,
    expected_emails,
    fast_cc_settings,
    seed_cc_export,
)
from tests.support.settings import make_settings


@pytest.fixture
def fake() -> Iterator[RunningFake]:
    with run_fake(seed=11, requests_per_second=50) as running:
        yield running


@pytest.fixture(params=["sqlite", "mongo"])
async def services(
    request: pytest.FixtureRequest, tmp_path: Path, fake: RunningFake
) -> AsyncIterator[Services]:
    """Both stores: the run pipeline's reads, checkpoints and resume on each adapter."""
    destination = ConstantContact(fast_cc_settings(fake))
    # Small requests, so that a few hundred contacts take several batches.
    destination.limits = replace(destination.limits, batch_max_records=40, requests_per_second=50)
    database_url = (
        f"sqlite:///{tmp_path / 'cc.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("mongo_database_url")
    )
    settings = make_settings(database_url, run_read_batch_size=50, run_heartbeat_seconds=0.2)
    async with open_services(
        settings, extra_plugins=[ConstantContactPlugin(destination)], load_entry_points=False
    ) as opened:
        yield opened


async def test_the_list_holds_exactly_the_valid_deduplicated_contacts_with_mapped_fields(
    services: Services, fake: RunningFake
) -> None:
    export = await seed_cc_export(services, fake, cc_profiles(200))

    run = await services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "alice")
    states = [s async for s in follow_run(services.store, services.events, run.id)]

    done = states[-1]
    assert done.status is ExportRunStatus.SUCCEEDED, done.message
    c = done.counts
    assert (c.profiles_read, c.contacts_sent, c.skipped_invalid, c.skipped_duplicate) == (
        203,
        200,
        2,
        1,
    )
    assert c.accepted_by_destination == 200
    assert fake.state.list_members(NEWSLETTER_LIST) == expected_emails(200)
    contact = fake.state.contacts["contact7@example.com"]
    assert contact.fields["first_name"] == "First7"
    assert contact.fields["last_name"] == "Last7"
    assert fake.state.most_records() <= 40
    progress = [s.progress for s in states]
    assert progress == sorted(progress)


async def test_an_interrupted_run_resumes_with_exact_counts_and_every_contact(
    services: Services, fake: RunningFake
) -> None:
    export = await seed_cc_export(services, fake, cc_profiles(300))
    await services.queue.aclose()  # the test drives the job
    run = await services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "alice")

    job = asyncio.create_task(execute_run(services.run_context, run.id))
    while True:  # until a few batches are checkpointed
        current = await services.store.get_run(run.id)
        assert current is not None
        if current.counts.contacts_sent >= 80:
            break
        await asyncio.sleep(0.02)
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    interrupted = await services.store.get_run(run.id)
    assert interrupted is not None
    assert interrupted.status is ExportRunStatus.RUNNING

    done = await execute_run(services.run_context, run.id)

    assert done is not None
    assert done.status is ExportRunStatus.SUCCEEDED, done.message
    c = done.counts
    assert (c.profiles_read, c.contacts_sent, c.skipped_invalid, c.skipped_duplicate) == (
        303,
        300,
        2,
        1,
    )
    assert c.accepted_by_destination == 300
    assert fake.state.list_members(NEWSLETTER_LIST) == expected_emails(300)
