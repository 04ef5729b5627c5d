"""One contract for both run-event adapters: in-process and Redis pub/sub (database 5)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from service.coordination.events import (
    MemoryRunEvents,
    RedisRunEvents,
    RunEvents,
    run_from_bytes,
    run_to_bytes,
)
from service.domain import ExportRun, ExportRunStatus, ExportRunTrigger, RunCounts, new_id, utcnow
from tests.support.redis_db import flushed_redis, shared_redis_url

REDIS_URL = shared_redis_url(5)


def a_run(export_id: str = "export-1") -> ExportRun:
    return ExportRun(
        id=new_id(),
        export_id=export_id,
        status=ExportRunStatus.QUEUED,
        trigger=ExportRunTrigger.ON_DEMAND,
        requested_by="alice",
        queued_at=utcnow(),
    )


@pytest.fixture(params=["memory", "redis"])
async def events(request: pytest.FixtureRequest) -> AsyncIterator[RunEvents]:
    if request.param == "memory":
        adapter: RunEvents = MemoryRunEvents()
        yield adapter
        await adapter.aclose()
        return
    async with flushed_redis(REDIS_URL) as redis:
        adapter = RedisRunEvents(redis, channel=f"segport:test:{new_id()}")
        yield adapter
        await adapter.aclose()


async def collect(
    subscription: AsyncIterator[ExportRun], until: ExportRunStatus
) -> list[ExportRun]:
    seen: list[ExportRun] = []
    async for run in subscription:
        seen.append(run)
        if run.status is until:
            break
    return seen


async def test_a_subscriber_gets_status_changes_and_the_terminal_state(events: RunEvents) -> None:
    run = a_run()
    subscription = await events.subscribe(run_id=run.id).start()
    collecting = asyncio.create_task(collect(subscription, ExportRunStatus.SUCCEEDED))

    await events.publish(run)
    running = replace(run, status=ExportRunStatus.RUNNING)
    await events.publish(running)
    await events.publish(replace(running, status=ExportRunStatus.SUCCEEDED, progress=1.0))
    seen = await asyncio.wait_for(collecting, 5)
    await subscription.aclose()

    assert [r.status for r in seen] == [
        ExportRunStatus.QUEUED,
        ExportRunStatus.RUNNING,
        ExportRunStatus.SUCCEEDED,
    ]
    assert seen[-1].progress == 1.0
    assert seen[0].queued_at == run.queued_at


async def test_progress_bursts_are_coalesced_but_the_latest_arrives(events: RunEvents) -> None:
    run = replace(a_run(), status=ExportRunStatus.RUNNING)
    subscription = await events.subscribe(run_id=run.id).start()
    collecting = asyncio.create_task(collect(subscription, ExportRunStatus.SUCCEEDED))

    for read in range(1, 201):
        await events.publish(replace(run, counts=RunCounts(profiles_total=200, profiles_read=read)))
    await events.publish(replace(run, status=ExportRunStatus.SUCCEEDED, counts=RunCounts(200, 200)))
    seen = await asyncio.wait_for(collecting, 5)
    await subscription.aclose()

    assert len(seen) < 20
    reads = [r.counts.profiles_read for r in seen]
    assert reads == sorted(reads)
    assert seen[-1].status is ExportRunStatus.SUCCEEDED
    assert seen[-1].counts.profiles_read == 200


async def test_a_changed_message_is_never_coalesced_away(events: RunEvents) -> None:
    run = replace(a_run(), status=ExportRunStatus.RUNNING)
    subscription = await events.subscribe(run_id=run.id).start()
    collecting = asyncio.create_task(collect(subscription, ExportRunStatus.SUCCEEDED))

    note = "Attempt 1 of 5 failed and will be retried in about 5 s: Constant Contact answered 503"
    await events.publish(replace(run, counts=RunCounts(profiles_total=200, profiles_read=1)))
    await events.publish(replace(run, counts=RunCounts(200, 2), message=note))
    await events.publish(replace(run, counts=RunCounts(200, 3), message=note))
    await events.publish(replace(run, status=ExportRunStatus.SUCCEEDED, counts=RunCounts(200, 200)))
    seen = await asyncio.wait_for(collecting, 5)
    await subscription.aclose()

    assert note in [r.message for r in seen]
    assert seen[-1].message is None


async def test_a_subscriber_sees_only_the_runs_it_asked_for(events: RunEvents) -> None:
    mine, other = a_run("export-mine"), a_run("export-other")
    by_export = await events.subscribe(export_id="export-mine").start()
    collecting = asyncio.create_task(collect(by_export, ExportRunStatus.CANCELLED))

    await events.publish(other)
    await events.publish(mine)
    await events.publish(replace(other, status=ExportRunStatus.CANCELLED))
    await events.publish(replace(mine, status=ExportRunStatus.CANCELLED))
    seen = await asyncio.wait_for(collecting, 5)
    await by_export.aclose()

    assert {r.export_id for r in seen} == {"export-mine"}
    assert [r.status for r in seen] == [ExportRunStatus.QUEUED, ExportRunStatus.CANCELLED]


def test_a_run_survives_serialization_unchanged() -> None:
    run = replace(
        a_run(),
        status=ExportRunStatus.RUNNING,
        started_at=utcnow(),
        counts=RunCounts(10, 5, 4, 1),
        checkpoint={"last_profile_id": "p5"},
        message="waiting for the daily quota",
    )

    assert run_from_bytes(run_to_bytes(run)) == run
