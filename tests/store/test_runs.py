"""Store contract: export runs (one active per export, dedupe, compare-and-set, progress)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from service.domain import (
    RUN_ERROR_SAMPLE_SIZE,
    ExportRun,
    ExportRunStatus,
    ExportRunTrigger,
    RunCounts,
    RunError,
    utcnow,
)
from service.store.base import ActiveRunExists, DuplicateRun, NotFound, RunProgress, Store
from tests.support.records import make_export, make_run

QUEUED, RUNNING = ExportRunStatus.QUEUED, ExportRunStatus.RUNNING


async def saved_export_id(store: Store) -> str:
    export = make_export()
    await store.save_export(export)
    return export.id


async def running_run(store: Store) -> ExportRun:
    run = make_run(await saved_export_id(store), status=RUNNING, started_at=utcnow())
    await store.insert_run(run)
    return run


def errors(start: int, count: int) -> list[RunError]:
    return [
        RunError(
            code="INVALID_EMAIL", message=f"bad e-mail #{i}", profile_id=f"p{i}", field="email"
        )
        for i in range(start, start + count)
    ]


async def test_inserted_run_reads_back_equal(store: Store) -> None:
    now = utcnow()
    run = make_run(
        await saved_export_id(store),
        status=ExportRunStatus.SUCCEEDED,
        trigger=ExportRunTrigger.EXPORT_SCHEDULE,
        requested_by=None,
        started_at=now,
        finished_at=now + timedelta(seconds=3),
        progress=1.0,
        counts=RunCounts(profiles_total=3, profiles_read=3, contacts_sent=2, skipped_invalid=1),
        message="Done.",
        errors=errors(0, 2) + [RunError(code="BATCH", message="batch refused")],
        checkpoint={"last_profile_id": "p3", "activities": ["a1"]},
        cancel_requested=False,
        dedupe_key="export@2030-01-01T02:00:00Z",
        attempt=2,
    )

    await store.insert_run(run)

    assert await store.get_run(run.id) == run
    assert await store.get_run("missing") is None


async def test_a_run_of_an_unknown_export_is_refused(store: Store) -> None:
    with pytest.raises(NotFound, match="no-such-export"):
        await store.insert_run(make_run("no-such-export"))


async def test_a_second_active_run_of_an_export_is_refused_naming_the_active_one(
    store: Store,
) -> None:
    export_id = await saved_export_id(store)
    first = make_run(export_id)
    await store.insert_run(first)

    with pytest.raises(ActiveRunExists) as raised:
        await store.insert_run(make_run(export_id, status=RUNNING))

    assert (raised.value.export_id, raised.value.run_id) == (export_id, first.id)
    assert (await store.list_runs(10, export_id=export_id)).total_count == 1


async def test_concurrent_inserts_leave_exactly_one_active_run(store: Store) -> None:
    export_id = await saved_export_id(store)
    runs = [make_run(export_id) for _ in range(6)]

    results = await asyncio.gather(*(store.insert_run(r) for r in runs), return_exceptions=True)

    winners = [r for r, result in zip(runs, results, strict=True) if result is None]
    assert len(winners) == 1
    losers = [result for result in results if result is not None]
    assert all(isinstance(e, ActiveRunExists) for e in losers)
    assert {e.run_id for e in losers if isinstance(e, ActiveRunExists)} == {winners[0].id}
    assert await store.active_run(export_id) == winners[0]


async def test_a_finished_run_frees_the_export_for_a_new_one(store: Store) -> None:
    export_id = await saved_export_id(store)
    first = make_run(export_id)
    await store.insert_run(first)
    await store.update_run(first.id, status=ExportRunStatus.SUCCEEDED, finished_at=utcnow())

    second = make_run(export_id)
    await store.insert_run(second)

    assert await store.active_run(export_id) == second


async def test_terminal_runs_do_not_hold_the_active_slot(store: Store) -> None:
    export_id = await saved_export_id(store)
    skipped = make_run(export_id, status=ExportRunStatus.SKIPPED, message="Nothing to send.")
    await store.insert_run(skipped)

    queued = make_run(export_id)
    await store.insert_run(queued)

    assert await store.active_run(export_id) == queued


async def test_a_dedupe_key_makes_a_run_once_even_after_it_finished(store: Store) -> None:
    export_id = await saved_export_id(store)
    key = f"{export_id}@2030-01-01T02:00:00+00:00"
    first = make_run(export_id, dedupe_key=key, trigger=ExportRunTrigger.EXPORT_SCHEDULE)
    await store.insert_run(first)
    await store.update_run(first.id, status=ExportRunStatus.FAILED)

    with pytest.raises(DuplicateRun) as raised:
        await store.insert_run(make_run(export_id, dedupe_key=key))

    assert raised.value.dedupe_key == key
    # Runs without a key never collide with each other.
    await store.insert_run(make_run(export_id))
    await store.update_run((await store.active_run(export_id)).id, status="SUCCEEDED")  # type: ignore[union-attr]
    await store.insert_run(make_run(export_id))


async def test_list_runs_pages_newest_first_and_filters_by_export(store: Store) -> None:
    export_id, other_id = await saved_export_id(store), await saved_export_id(store)
    runs = [make_run(export_id, status=ExportRunStatus.SUCCEEDED) for _ in range(3)]
    for run in runs:
        await store.insert_run(run)
    other = make_run(other_id)
    await store.insert_run(other)
    newest_first = sorted((r.id for r in runs), reverse=True)

    first = await store.list_runs(2, export_id=export_id)
    second = await store.list_runs(2, after=first.items[-1].id, export_id=export_id)
    everything = await store.list_runs(10)

    assert [r.id for r in first.items + second.items] == newest_first
    assert first.has_next_page
    assert not second.has_next_page
    assert first.total_count == 3
    assert everything.total_count == 4
    assert [r.id for r in everything.items] == sorted([*newest_first, other.id], reverse=True)


async def test_latest_and_active_run_of_an_export(store: Store) -> None:
    export_id = await saved_export_id(store)
    assert await store.latest_runs([export_id]) == {}
    assert await store.active_run(export_id) is None
    done = make_run(export_id, status=ExportRunStatus.FAILED)
    await store.insert_run(done)
    queued = make_run(export_id)
    await store.insert_run(queued)

    assert await store.latest_runs([export_id]) == {
        export_id: max(done, queued, key=lambda r: r.id)
    }
    assert await store.active_run(export_id) == queued


async def test_latest_runs_of_several_exports_in_one_call(store: Store) -> None:
    first, second, without = [await saved_export_id(store) for _ in range(3)]
    runs: dict[str, list[ExportRun]] = {first: [], second: []}
    for export_id in (first, second, first, second, first):
        run = make_run(export_id, status=ExportRunStatus.SUCCEEDED)
        await store.insert_run(run)
        runs[export_id].append(run)

    latest = await store.latest_runs([first, second, without, first])

    # Newest is the greatest id (ids are time-ordered; within one millisecond, random).
    newest = {export_id: max(made, key=lambda r: r.id) for export_id, made in runs.items()}
    assert latest == newest
    assert await store.latest_runs([]) == {}


async def test_list_active_runs_lists_queued_and_running_runs_only(store: Store) -> None:
    queued = make_run(await saved_export_id(store))
    running = make_run(await saved_export_id(store), status=RUNNING)
    done = make_run(await saved_export_id(store), status=ExportRunStatus.CANCELLED)
    for run in (queued, running, done):
        await store.insert_run(run)

    active = await store.list_active_runs()

    assert sorted(r.id for r in active) == sorted([queued.id, running.id])


async def test_update_run_applies_changes_when_the_status_matches(store: Store) -> None:
    run = make_run(await saved_export_id(store))
    await store.insert_run(run)
    started = utcnow()

    updated = await store.update_run(
        run.id, expected_status=[QUEUED], status=RUNNING, started_at=started, attempt=1
    )

    assert updated is not None
    assert (updated.status, updated.started_at, updated.attempt) == (RUNNING, started, 1)
    assert await store.get_run(run.id) == updated
    assert await store.active_run(run.export_id) == updated


async def test_update_run_changes_nothing_when_the_status_does_not_match(store: Store) -> None:
    run = make_run(await saved_export_id(store))
    await store.insert_run(run)

    result = await store.update_run(
        run.id, expected_status=[RUNNING], status=ExportRunStatus.SUCCEEDED
    )

    assert result is None
    assert await store.get_run(run.id) == run
    assert await store.update_run("missing", status=RUNNING) is None


async def test_concurrent_compare_and_set_lets_exactly_one_caller_win(store: Store) -> None:
    run = make_run(await saved_export_id(store))
    await store.insert_run(run)

    results = await asyncio.gather(
        *(
            store.update_run(run.id, expected_status=[QUEUED], status=RUNNING, attempt=n)
            for n in range(1, 6)
        )
    )

    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert await store.get_run(run.id) == winners[0]


async def test_update_run_writes_counts_errors_and_checkpoint(store: Store) -> None:
    run = make_run(await saved_export_id(store))
    await store.insert_run(run)
    counts = RunCounts(profiles_total=10, profiles_read=4, contacts_sent=4)

    updated = await store.update_run(
        run.id,
        status=ExportRunStatus.FAILED,
        finished_at=utcnow(),
        counts=counts,
        errors=errors(0, 1),
        checkpoint={"last_profile_id": "p4"},
        message="Constant Contact refused the token.",
    )

    assert updated is not None
    assert updated.counts == counts
    assert updated.errors == errors(0, 1)
    assert updated.checkpoint == {"last_profile_id": "p4"}
    assert await store.active_run(run.export_id) is None


async def test_update_run_refuses_unknown_fields_naming_them(store: Store) -> None:
    run = make_run(await saved_export_id(store))
    await store.insert_run(run)

    with pytest.raises(ValueError, match="'colour'"):
        await store.update_run(run.id, colour="red")
    with pytest.raises(ValueError, match="'id'"):
        await store.update_run(run.id, id="other")

    assert await store.get_run(run.id) == run


async def test_update_run_back_to_active_is_refused_while_another_run_is_active(
    store: Store,
) -> None:
    export_id = await saved_export_id(store)
    old = make_run(export_id, status=ExportRunStatus.FAILED)
    await store.insert_run(old)
    current = make_run(export_id)
    await store.insert_run(current)

    with pytest.raises(ActiveRunExists) as raised:
        await store.update_run(old.id, status=QUEUED)

    assert raised.value.run_id == current.id
    assert (await store.get_run(old.id)) == old


async def test_progress_writes_counts_checkpoint_and_appends_errors(store: Store) -> None:
    run = await running_run(store)
    counts = RunCounts(profiles_total=100, profiles_read=50, contacts_sent=48, skipped_invalid=2)

    first = await store.record_run_progress(
        run.id,
        RunProgress(
            counts=counts, progress=0.5, checkpoint={"after": "p50"}, new_errors=errors(0, 2)
        ),
    )
    second = await store.record_run_progress(
        run.id,
        RunProgress(
            counts=counts,
            progress=0.6,
            checkpoint={"after": "p60"},
            new_errors=errors(2, 1),
            message="Uploading",
        ),
    )

    assert first is not None
    assert second is not None
    assert first.errors == errors(0, 2)
    assert (second.progress, second.checkpoint, second.counts) == (0.6, {"after": "p60"}, counts)
    assert second.errors == errors(0, 3)
    assert second.message == "Uploading"
    assert await store.get_run(run.id) == second


async def test_progress_keeps_the_first_errors_up_to_the_sample_size(store: Store) -> None:
    run = await running_run(store)
    progress = RunProgress(counts=RunCounts(), progress=0.1, checkpoint={})

    await store.record_run_progress(
        run.id,
        RunProgress(progress.counts, 0.1, {}, new_errors=errors(0, RUN_ERROR_SAMPLE_SIZE - 3)),
    )
    capped = await store.record_run_progress(
        run.id, RunProgress(progress.counts, 0.2, {}, new_errors=errors(1000, 10))
    )
    unchanged = await store.record_run_progress(
        run.id, RunProgress(progress.counts, 0.3, {}, new_errors=errors(2000, 5))
    )

    assert capped is not None
    assert unchanged is not None
    expected = errors(0, RUN_ERROR_SAMPLE_SIZE - 3) + errors(1000, 3)
    assert capped.errors == expected
    assert unchanged.errors == expected
    assert unchanged.progress == 0.3


async def test_progress_is_only_recorded_while_running(store: Store) -> None:
    run = make_run(await saved_export_id(store))
    await store.insert_run(run)

    result = await store.record_run_progress(
        run.id, RunProgress(counts=RunCounts(profiles_read=5), progress=0.5, checkpoint={"a": 1})
    )

    assert result is None
    assert await store.get_run(run.id) == run
    assert (
        await store.record_run_progress(
            "missing", RunProgress(counts=RunCounts(), progress=0.0, checkpoint={})
        )
        is None
    )


async def test_cancelling_a_queued_run_cancels_it_at_once(store: Store) -> None:
    run = make_run(await saved_export_id(store))
    await store.insert_run(run)

    cancelled = await store.request_run_cancel(run.id)

    assert cancelled is not None
    assert cancelled.status == ExportRunStatus.CANCELLED
    assert cancelled.cancel_requested is True
    assert cancelled.finished_at is not None
    assert cancelled.message == "Cancelled before it started."
    assert await store.get_run(run.id) == cancelled
    assert await store.active_run(run.export_id) is None


async def test_cancelling_a_running_run_only_asks_it_to_stop(store: Store) -> None:
    run = await running_run(store)

    asked = await store.request_run_cancel(run.id)

    assert asked is not None
    assert (asked.status, asked.cancel_requested, asked.finished_at) == (RUNNING, True, None)
    assert await store.active_run(run.export_id) == asked


async def test_cancelling_a_finished_or_unknown_run_changes_nothing(store: Store) -> None:
    run = make_run(await saved_export_id(store), status=ExportRunStatus.SUCCEEDED)
    await store.insert_run(run)

    assert await store.request_run_cancel(run.id) == run
    assert await store.request_run_cancel("missing") is None
