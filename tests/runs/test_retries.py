"""Transient destination trouble: the run says it will retry, retries, and gives up in the end."""

from __future__ import annotations

from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from service.domain import ExportRunStatus, ExportRunTrigger
from service.plugins import TransientDestinationError
from tests.runs.conftest import World, people

MAX_TRIES = 3


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"job_max_tries": MAX_TRIES, "job_retry_base_seconds": 0.05}


async def test_a_transient_failure_is_announced_retried_and_the_run_succeeds(
    world: World,
) -> None:
    await world.add_profiles(people(30))
    export = await world.add_export()
    world.behaviour.fail_upload_number = 2
    world.behaviour.fail_with = TransientDestinationError("Constant Contact answered 503")

    run = await world.services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "alice")
    states = await world.until_done(run.id)

    retrying = [s for s in states if s.message and "will be retried" in s.message]
    assert retrying, [s.message for s in states]
    assert retrying[0].status is ExportRunStatus.RUNNING
    assert retrying[0].message is not None
    assert retrying[0].message.startswith(f"Attempt 1 of {MAX_TRIES} failed")
    assert retrying[0].message.endswith("Constant Contact answered 503")
    done = states[-1]
    assert done.status is ExportRunStatus.SUCCEEDED
    assert done.message is None  # the outcome replaces the note
    assert done.attempt == 2
    assert done.counts.contacts_sent == 30
    assert world.behaviour.emails() == {f"person{i}@example.com" for i in range(30)}


async def test_transient_failures_on_every_attempt_fail_the_run_saying_so(world: World) -> None:
    await world.add_profiles(people(30))
    export = await world.add_export()
    world.behaviour.fail_upload_number = 1
    world.behaviour.fail_count = MAX_TRIES
    world.behaviour.fail_with = TransientDestinationError("Constant Contact answered 503")

    run = await world.services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "alice")
    done = (await world.until_done(run.id))[-1]

    assert done.status is ExportRunStatus.FAILED
    assert done.message == f"Gave up after {MAX_TRIES} attempts: Constant Contact answered 503"
    assert world.behaviour.uploads == MAX_TRIES


async def test_redis_going_away_mid_run_is_retried_not_failed(world: World) -> None:
    # The shared rate limiter and the locks live in Redis: a restart reaches the run there.
    await world.add_profiles(people(30))
    export = await world.add_export()
    world.behaviour.fail_upload_number = 2
    world.behaviour.fail_with = RedisConnectionError("Connection closed by server.")

    run = await world.services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "alice")
    states = await world.until_done(run.id)

    retrying = [s.message for s in states if s.message and "will be retried" in s.message]
    assert retrying, [s.message for s in states]
    assert "Redis did not answer" in retrying[0]
    done = states[-1]
    assert done.status is ExportRunStatus.SUCCEEDED, done.message
    assert done.attempt == 2
    assert world.behaviour.emails() == {f"person{i}@example.com" for i in range(30)}
