"""A receipt the destination reports as failed (``Confirmation.failure``) fails the run with
the destination's words and exact counts, and notifies, like any permanent failure."""

from __future__ import annotations

from service.domain import ExportRunStatus, ExportRunTrigger
from tests.runs.conftest import World, people


async def test_a_failed_confirmation_fails_the_run_with_its_words_and_counts_that_add_up(
    world: World,
) -> None:
    await world.add_profiles(people(30))
    export = await world.add_export()
    world.behaviour.failing_confirmation = ("receipt-1", 4, "The import was aborted upstream.")

    run = await world.services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "alice")
    done = (await world.until_done(run.id))[-1]

    assert done.status is ExportRunStatus.FAILED
    assert done.message == "The import was aborted upstream."
    c = done.counts
    assert c.contacts_sent == c.accepted_by_destination + c.rejected_by_destination
    assert c.rejected_by_destination >= 1
    assert c.profiles_read == c.contacts_sent
    stored = await world.services.store.get_run(run.id)
    assert stored is not None
    assert [e.code for e in stored.errors] == ["DESTINATION_FAILED"]
    assert done.progress < 1.0
