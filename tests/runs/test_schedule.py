"""Due times across DST changes, and ticks that make each due run exactly once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from service.domain import (
    ExportRunStatus,
    ExportRunTrigger,
    ExportSchedule,
    Frequency,
    Recurrence,
    RefreshSchedule,
    ScheduleMode,
)
from service.domain.schedule import due_times
from service.runs.schedule import ScheduleTicker, tick
from tests.runs.conftest import World, people

PARIS = "Europe/Paris"


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_daily_times_follow_the_local_clock_across_spring_forward() -> None:
    daily = Recurrence(Frequency.DAILY, ["09:00"], PARIS)

    dues = due_times(daily, utc(2026, 3, 27, 12), utc(2026, 3, 30, 12))

    # 09:00 CET is 08:00 UTC; from 2026-03-29 on, 09:00 CEST is 07:00 UTC.
    assert dues == [utc(2026, 3, 28, 8), utc(2026, 3, 29, 7), utc(2026, 3, 30, 7)]


def test_a_time_skipped_by_spring_forward_runs_once_at_the_shifted_instant() -> None:
    daily = Recurrence(Frequency.DAILY, ["02:30"], PARIS)

    dues = due_times(daily, utc(2026, 3, 28, 12), utc(2026, 3, 29, 12))

    # 02:30 does not exist on 2026-03-29 in Paris; it runs at 03:30 CEST = 01:30 UTC.
    assert dues == [utc(2026, 3, 29, 1, 30)]


def test_a_skipped_time_and_the_time_it_shifts_onto_run_once() -> None:
    daily = Recurrence(Frequency.DAILY, ["02:30", "03:30"], PARIS)

    dues = due_times(daily, utc(2026, 3, 28, 12), utc(2026, 3, 29, 12))

    assert dues == [utc(2026, 3, 29, 1, 30)]


def test_a_time_repeated_by_fall_back_runs_once() -> None:
    daily = Recurrence(Frequency.DAILY, ["02:30"], PARIS)

    dues = due_times(daily, utc(2026, 10, 24, 12), utc(2026, 10, 25, 12))

    # 02:30 happens twice on 2026-10-25 (CEST then CET): once, the first time.
    assert dues == [utc(2026, 10, 25, 0, 30)]


def test_weekly_runs_only_on_the_chosen_weekdays_up_to_four_times() -> None:
    weekly = Recurrence(Frequency.WEEKLY, ["06:00", "12:00", "18:00", "23:59"], "UTC", [1, 3])

    dues = due_times(weekly, utc(2026, 6, 1), utc(2026, 6, 8))  # Mon 1 June .. Mon 8 June

    assert [d.isoweekday() for d in dues] == [1, 1, 1, 1, 3, 3, 3, 3]
    assert dues[0] == utc(2026, 6, 1, 6)


class FixedClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def test_ticks_start_own_and_refresh_scheduled_exports_when_due(world: World) -> None:
    await world.add_profiles(people(3))
    await world.services.queue.aclose()
    own = await world.add_export(
        display_name="Own",
        schedule=ExportSchedule(ScheduleMode.OWN, Recurrence(Frequency.DAILY, ["02:30"], PARIS)),
    )
    follows = await world.add_export(display_name="Follows refresh")
    await world.add_export(display_name="Off", schedule=ExportSchedule(ScheduleMode.OFF))
    await world.services.store.save_refresh_schedule(
        RefreshSchedule(enabled=True, recurrence=Recurrence(Frequency.DAILY, ["03:00"], PARIS))
    )
    clock = FixedClock(utc(2026, 3, 29, 0, 50))
    ticker = ScheduleTicker(world.services.run_context, clock)

    assert await ticker.tick() == []
    clock.now = utc(2026, 3, 29, 1, 31)  # 03:00 CEST (01:00 UTC), shifted 02:30 (01:30 UTC)
    made = await ticker.tick()
    clock.now += timedelta(minutes=5)
    again = await ticker.tick()

    assert {(r.export_id, r.trigger) for r in made} == {
        (own.id, ExportRunTrigger.EXPORT_SCHEDULE),
        (follows.id, ExportRunTrigger.REFRESH_SCHEDULE),
    }
    by_export = {r.export_id: r for r in made}
    assert by_export[own.id].dedupe_key == f"{own.id}@2026-03-29T01:30:00+00:00"
    assert again == []


async def test_two_ticks_at_once_make_one_run_per_due_time(world: World) -> None:
    await world.add_profiles(people(3))
    await world.services.queue.aclose()
    export = await world.add_export(
        schedule=ExportSchedule(ScheduleMode.OWN, Recurrence(Frequency.DAILY, ["09:00"], "UTC"))
    )
    since, now = utc(2026, 5, 4, 8, 59, 50), utc(2026, 5, 4, 9, 0, 20)

    results = await asyncio.gather(
        *(tick(world.services.run_context, since, now) for _ in range(4))
    )

    made = [run for runs in results for run in runs]
    assert len(made) == 1
    page = await world.services.store.list_runs(first=10, export_id=export.id)
    assert [r.dedupe_key for r in page.items] == [f"{export.id}@2026-05-04T09:00:00+00:00"]


async def test_a_due_time_that_finds_a_run_still_active_is_recorded_skipped(world: World) -> None:
    await world.add_profiles(people(3))
    await world.services.queue.aclose()  # the first run stays QUEUED: still active
    export = await world.add_export(
        schedule=ExportSchedule(ScheduleMode.OWN, Recurrence(Frequency.DAILY, ["09:00"], "UTC"))
    )
    active = await world.services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "bob")

    made = await tick(world.services.run_context, utc(2026, 5, 4, 8, 59), utc(2026, 5, 4, 9, 1))
    again = await tick(world.services.run_context, utc(2026, 5, 4, 8, 59), utc(2026, 5, 4, 9, 1))

    assert made == again == []
    page = await world.services.store.list_runs(first=10, export_id=export.id)
    assert len(page.items) == 2
    (skipped,) = [r for r in page.items if r.id != active.id]
    assert skipped.status is ExportRunStatus.SKIPPED
    assert skipped.trigger is ExportRunTrigger.EXPORT_SCHEDULE
    assert skipped.dedupe_key == f"{export.id}@2026-05-04T09:00:00+00:00"
    assert skipped.finished_at is not None
    assert skipped.message == (
        f"Skipped: the run due at 2026-05-04T09:00:00+00:00 found run {active.id!r} still active."
    )
