"""The typed checkpoint keeps the JSON shape runs have always stored, so old runs resume."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from service.domain import ExportRunStatus, ExportRunTrigger, RunCounts, utcnow
from service.runs.checkpoint import Checkpoint, PendingReceipt, heartbeat_age
from service.runs.lifecycle import execute_run
from tests.runs.conftest import World, people

OLD_CHECKPOINT: dict[str, Any] = {
    "last_profile_id": "p00011",
    "pending_receipts": [{"receipt": "receipt-old", "records": 4}],
    "heartbeat_at": "2026-05-04T09:00:00.250000+00:00",
}
"""What the untyped pipeline wrote for a run 12 profiles in, one receipt still pending."""


def test_a_stored_checkpoint_reads_typed_and_writes_back_the_same_json() -> None:
    checkpoint = Checkpoint.from_json(OLD_CHECKPOINT)

    assert checkpoint == Checkpoint(
        last_profile_id="p00011",
        pending_receipts=(PendingReceipt("receipt-old", 4),),
        heartbeat_at=datetime(2026, 5, 4, 9, 0, 0, 250000, tzinfo=UTC),
    )
    assert checkpoint.to_json() == OLD_CHECKPOINT


def test_a_run_that_never_started_has_an_empty_checkpoint() -> None:
    empty = Checkpoint.from_json({})

    assert empty == Checkpoint()
    assert empty.to_json() == {
        "last_profile_id": None,
        "pending_receipts": [],
        "heartbeat_at": None,
    }
    assert Checkpoint.from_json(empty.to_json()) == empty


async def test_heartbeat_age_reads_the_stored_heartbeat(world: World) -> None:
    export = await world.add_export()
    await world.services.queue.aclose()  # nothing carries the run
    run = await world.services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "alice")
    now = utcnow()

    assert heartbeat_age(run, now) is None
    beating = Checkpoint.from_json(run.checkpoint).beating(now - timedelta(seconds=7))
    stored = await world.services.store.update_run(run.id, checkpoint=beating.to_json())
    assert stored is not None
    assert heartbeat_age(stored, now) == timedelta(seconds=7)


async def test_a_run_checkpointed_by_the_untyped_pipeline_resumes_after_its_checkpoint(
    world: World,
) -> None:
    await world.add_profiles(people(30))
    export = await world.add_export()
    await world.services.queue.aclose()  # this test drives the job itself
    queued = await world.services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "a")
    # As the old code left a run whose worker died: 12 profiles sent, 8 of them accepted,
    # the receipt of the other 4 still to be confirmed.
    world.behaviour.receipts["receipt-old"] = 4
    stopped = await world.services.store.update_run(
        queued.id,
        status=ExportRunStatus.RUNNING,
        started_at=utcnow(),
        attempt=1,
        counts=RunCounts(
            profiles_total=30, profiles_read=12, contacts_sent=12, accepted_by_destination=8
        ),
        checkpoint=OLD_CHECKPOINT,
    )
    assert stopped is not None

    done = await execute_run(world.services.run_context, queued.id)

    assert done is not None
    assert done.status is ExportRunStatus.SUCCEEDED, done.message
    assert done.attempt == 2
    c = done.counts
    assert (c.profiles_read, c.contacts_sent, c.accepted_by_destination) == (30, 30, 30)
    # Only the profiles after the checkpoint were sent; the pending receipt was followed.
    assert world.behaviour.emails() == {f"person{i}@example.com" for i in range(12, 30)}
    assert len(world.behaviour.received) == 18
    assert "receipt-old" in world.behaviour.confirmed
    assert done.checkpoint == {
        "last_profile_id": "p00029",
        "pending_receipts": [],
        "heartbeat_at": None,
    }
