"""A destination's declared maximum of profiles per export."""

from __future__ import annotations

import pytest

from service.domain import ExportRunStatus, ExportRunTrigger
from service.plugins import DestinationLimits
from tests.runs.conftest import World, people


@pytest.fixture
def limits() -> DestinationLimits:
    return DestinationLimits(
        max_profiles_per_export=40,
        batch_max_records=7,
        batch_max_bytes=400,
        max_concurrent_uploads=2,
    )


async def test_a_segment_over_the_destination_limit_is_skipped_with_count_and_limit(
    world: World,
) -> None:
    await world.add_profiles(people(41))
    export = await world.add_export()

    run = await world.services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "alice")
    done = (await world.until_done(run.id))[-1]

    assert done.status is ExportRunStatus.SKIPPED
    assert "41" in (done.message or "")
    assert "40" in (done.message or "")
    assert done.counts.profiles_total == 41
    assert world.behaviour.received == []
