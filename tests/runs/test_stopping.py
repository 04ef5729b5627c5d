"""A process asked to stop (``RunContext.stopping``) commits the batches it has under way and
leaves its run resumable; the resumed run sends nothing twice.

Embedded mode, the in-test destination holding one upload open while the stop comes.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from service.domain import ExportRun, ExportRunStatus, ExportRunTrigger
from service.plugins import DestinationLimits
from tests.runs.conftest import SMALL_LIMITS, World, people


@pytest.fixture
def limits() -> DestinationLimits:
    """One upload at a time: with two, the other uploader may have been let start its batch
    just before the stop and count it just after, and "nothing started after the stop"
    could not be told from "started before it"."""
    return replace(SMALL_LIMITS, max_concurrent_uploads=1)


async def until_released(world: World, run_id: str) -> ExportRun:
    """The run once no job holds it any more (RUNNING, no heartbeat)."""

    async def poll() -> ExportRun:
        while True:
            run = await world.services.store.get_run(run_id)
            assert run is not None
            if run.status is ExportRunStatus.RUNNING and run.checkpoint.get("heartbeat_at") is None:
                return run
            assert not run.status.is_terminal, run
            await asyncio.sleep(0.02)

    return await asyncio.wait_for(poll(), 20)


async def test_a_stop_waits_for_the_upload_under_way_and_the_resumed_run_sends_it_once(
    world: World,
) -> None:
    await world.add_profiles(people(40))
    export = await world.add_export()
    world.behaviour.hold_upload_number = 2
    stopping = world.services.run_context.stopping

    run = await world.services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "alice")
    await asyncio.wait_for(world.behaviour.holding.wait(), 20)
    stopping.set()
    uploads_when_stopped = world.behaviour.uploads
    world.behaviour.release.set()
    stopped = await until_released(world, run.id)

    # Nothing started after the stop; everything sent before it is in the checkpoint.
    assert world.behaviour.uploads == uploads_when_stopped
    assert stopped.counts.contacts_sent == len(world.behaviour.received)
    assert stopped.checkpoint["last_profile_id"] == f"p{len(world.behaviour.received) - 1:05d}"
    assert 0 < stopped.counts.contacts_sent < 40

    stopping.clear()
    await world.services.queue.enqueue(run.id)
    done = (await world.until_done(run.id))[-1]

    assert done.status is ExportRunStatus.SUCCEEDED, done.message
    emails = [record["email"] for record in world.behaviour.received]
    assert len(emails) == len(set(emails)) == 40
    assert done.counts.contacts_sent == 40
    assert done.counts.accepted_by_destination == 40
