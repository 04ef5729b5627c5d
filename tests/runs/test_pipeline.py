"""The run pipeline against a real SQLite store and the in-test destination."""

from __future__ import annotations

import asyncio

import pytest

from service.coordination.run_requests import ActiveRunExistsError, ExportDetachedError
from service.domain import ConnectionStatus, ExportRun, ExportRunStatus, ExportRunTrigger
from service.plugins import AuthorizationLost, DestinationError, DestinationLimits
from service.runs.pipeline import execute_run
from tests.runs.conftest import World, people

MESSY = [
    *people(30),
    ("q00001", {"EmailAddress": "PERSON3@example.com"}),  # duplicate of p00003, other case
    ("q00002", {"EmailAddress": "not-an-address"}),
    ("q00003", {"FirstName": "No e-mail"}),
    ("q00004", {"EmailAddress": "person7@example.com"}),  # duplicate
    ("q00005", {"EmailAddress": "@example.com"}),
]


async def test_counts_add_up_and_destination_gets_each_valid_contact_once(world: World) -> None:
    await world.add_profiles(MESSY)
    export = await world.add_export()

    run = await world.services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "alice")
    states = await world.until_done(run.id)
    done = states[-1]

    assert done.status is ExportRunStatus.SUCCEEDED
    c = done.counts
    assert (c.profiles_total, c.profiles_read) == (35, 35)
    assert (c.contacts_sent, c.skipped_invalid, c.skipped_duplicate) == (30, 3, 2)
    assert c.profiles_read == c.contacts_sent + c.skipped_invalid + c.skipped_duplicate
    assert c.accepted_by_destination == 30
    assert done.progress == 1.0
    assert world.behaviour.emails() == {f"person{i}@example.com" for i in range(30)}
    assert len(world.behaviour.received) == 30
    assert {e.code for e in done.errors} == {"DUPLICATE", "EMAIL_INVALID", "MISSING_REQUIRED"}
    # The rejected address itself is not kept in the run's error sample.
    assert all("not-an-address" not in e.message for e in done.errors)


async def test_batches_stay_within_count_and_byte_limits(
    world: World, limits: DestinationLimits
) -> None:
    await world.add_profiles(people(50))
    export = await world.add_export()

    run = await world.services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "alice")
    await world.until_done(run.id)

    envelope = world.destination.batch_envelope_size({})
    for batch in world.behaviour.batches:
        body = envelope + sum(len(r.encoded) for r in batch.records) + len(batch.records) - 1
        assert len(batch.records) <= limits.batch_max_records
        assert body == batch.size_bytes
        assert body < limits.batch_max_bytes
    assert sum(len(b.records) for b in world.behaviour.batches) == 50


async def test_progress_seen_by_a_subscriber_never_goes_backwards(world: World) -> None:
    await world.add_profiles(people(60))
    export = await world.add_export()

    run = await world.services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "alice")
    states = await world.until_done(run.id)

    assert states[0].status in (ExportRunStatus.QUEUED, ExportRunStatus.RUNNING)
    progress = [s.progress for s in states]
    assert progress == sorted(progress)
    read = [s.counts.profiles_read for s in states]
    assert read == sorted(read)
    assert states[-1].status is ExportRunStatus.SUCCEEDED


async def _interrupted_then_resumed(world: World, hold_upload: int) -> ExportRun:
    """Run until upload ``hold_upload`` is in flight, kill the job there, then resume it."""
    export = await world.add_export()
    run = await world.services.store.get_run(
        (await world.services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "a")).id
    )
    assert run is not None
    await world.services.queue.abort(run.id)  # the inline job may have started: stop it
    world.behaviour.hold_upload_number = hold_upload
    job = asyncio.create_task(execute_run(world.services, run.id))
    await asyncio.wait_for(world.behaviour.holding.wait(), 10)
    job.cancel()  # like a worker dying mid-upload: no cancel was asked for
    with pytest.raises(asyncio.CancelledError):
        await job
    held = await world.services.store.get_run(run.id)
    assert held is not None
    assert held.status is ExportRunStatus.RUNNING
    assert held.checkpoint["last_profile_id"] is not None

    world.behaviour.hold_upload_number = None
    done = await execute_run(world.services, run.id)
    assert done is not None
    return done


async def test_a_resumed_run_counts_exactly_like_an_uninterrupted_one(world: World) -> None:
    # Duplicates of early profiles come late, so the resumed job must know what was sent.
    profiles = [
        *people(40),
        ("z00001", {"EmailAddress": "person1@example.com"}),
        ("z00002", {"EmailAddress": "broken"}),
        ("z00003", {"EmailAddress": "PERSON38@example.com"}),
    ]
    await world.add_profiles(profiles)
    await world.services.queue.aclose()  # this test drives the job itself

    done = await _interrupted_then_resumed(world, hold_upload=4)

    assert done.status is ExportRunStatus.SUCCEEDED
    c = done.counts
    assert (c.profiles_read, c.contacts_sent, c.skipped_invalid, c.skipped_duplicate) == (
        43,
        40,
        1,
        2,
    )
    assert c.accepted_by_destination == 40
    assert done.attempt == 2
    # Every contact arrived; the batch in flight at the crash was sent again, not lost.
    assert world.behaviour.emails() == {f"person{i}@example.com" for i in range(40)}
    assert len(world.behaviour.received) > 40


async def test_cancel_stops_a_running_run_and_keeps_what_was_sent(world: World) -> None:
    await world.add_profiles(people(60))
    export = await world.add_export()
    world.behaviour.hold_upload_number = 3

    run = await world.services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "alice")
    await asyncio.wait_for(world.behaviour.holding.wait(), 10)
    await world.services.runs.cancel_run(run.id, "bob")
    states = await world.until_done(run.id)

    done = states[-1]
    assert done.status is ExportRunStatus.CANCELLED
    assert done.counts.contacts_sent < 60
    assert done.counts.profiles_read == (
        done.counts.contacts_sent + done.counts.skipped_invalid + done.counts.skipped_duplicate
    )
    assert "Cancelled" in (done.message or "")


async def test_cancelling_a_queued_run_ends_it_at_once(world: World) -> None:
    await world.add_profiles(people(5))
    export = await world.add_export()
    await world.services.queue.aclose()  # nothing picks the run up

    run = await world.services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "alice")
    cancelled = await world.services.runs.cancel_run(run.id, "bob")

    assert cancelled.status is ExportRunStatus.CANCELLED
    assert world.behaviour.received == []


async def test_an_export_has_one_active_run_at_a_time(world: World) -> None:
    await world.add_profiles(people(5))
    export = await world.add_export()
    await world.services.queue.aclose()

    first = await world.services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "alice")
    with pytest.raises(ActiveRunExistsError) as raised:
        await world.services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "bob")

    assert raised.value.code == "ACTIVE_RUN_EXISTS"
    assert raised.value.run_id == first.id
    assert first.id in raised.value.message


async def test_a_detached_export_cannot_be_requested(world: World) -> None:
    export = await world.add_export(connection_id=None)

    with pytest.raises(ExportDetachedError) as raised:
        await world.services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "alice")

    assert raised.value.code == "EXPORT_DETACHED"
    assert "Newsletter" in raised.value.message


async def test_an_export_detached_while_queued_fails_without_sending(world: World) -> None:
    await world.add_profiles(people(5))
    export = await world.add_export()
    await world.services.queue.aclose()
    run = await world.services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "alice")
    export.connection_id = None
    await world.services.store.save_export(export)

    done = await execute_run(world.services, run.id)

    assert done is not None
    assert done.status is ExportRunStatus.FAILED
    assert "detached" in (done.message or "")
    assert world.behaviour.received == []


async def test_a_connection_needing_reauthorization_fails_the_run_at_once(world: World) -> None:
    await world.add_profiles(people(5))
    world.connection.status = ConnectionStatus.NEEDS_REAUTHORIZATION
    world.connection.status_message = "The destination refused the refresh token."
    await world.services.store.save_connection(world.connection)
    export = await world.add_export()

    run = await world.services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "alice")
    done = (await world.until_done(run.id))[-1]

    assert done.status is ExportRunStatus.FAILED
    assert "re-authorization" in (done.message or "")
    assert "refused the refresh token" in (done.message or "")
    assert world.behaviour.received == []


async def test_a_destination_error_fails_the_run_with_its_words_verbatim(world: World) -> None:
    await world.add_profiles(people(30))
    export = await world.add_export()
    words = "Contact limit of your plan reached (2500 contacts). Upgrade to add more."
    world.behaviour.fail_upload_number = 2
    world.behaviour.fail_with = DestinationError(words)

    run = await world.services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "alice")
    done = (await world.until_done(run.id))[-1]

    assert done.status is ExportRunStatus.FAILED
    assert done.message == words


async def test_authorization_lost_mid_run_fails_the_run(world: World) -> None:
    await world.add_profiles(people(30))
    export = await world.add_export()
    world.behaviour.fail_upload_number = 2
    world.behaviour.fail_with = AuthorizationLost("unknown, invalid, or expired refresh token")

    run = await world.services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "alice")
    done = (await world.until_done(run.id))[-1]

    assert done.status is ExportRunStatus.FAILED
    assert done.message == "unknown, invalid, or expired refresh token"


async def test_a_refused_batch_is_counted_rejected_and_the_run_goes_on(world: World) -> None:
    await world.add_profiles(people(30))
    export = await world.add_export()
    world.behaviour.reject_batches_with = "person10@"

    run = await world.services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "alice")
    done = (await world.until_done(run.id))[-1]

    assert done.status is ExportRunStatus.SUCCEEDED
    refused = next(
        b for b in world.behaviour.batches if any(b"person10@" in r.encoded for r in b.records)
    )
    c = done.counts
    assert c.rejected_by_destination == len(refused.records)
    assert c.accepted_by_destination == 30 - len(refused.records)
    assert c.contacts_sent == 30
    assert any(e.code == "BATCH_REJECTED" and "too many contacts" in e.message for e in done.errors)
