"""The schedule: when a recurrence is due, and the tick that starts due runs.

Due times are wall-clock times in an IANA zone, turned into UTC instants the
way calendars do (RFC 5545): a time that does not exist on a spring-forward
day runs once at the shifted instant (02:30 becomes 03:30 in Paris on
2026-03-29), and a time that happens twice on a fall-back day runs once, at
its first occurrence. Two local times that land on the same instant run once.

A tick looks at every scheduled export for due times since the previous tick
and requests a run for each with ``dedupe_key = "<export id>@<due time>"``,
so any number of processes ticking at once make each due run exactly once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import structlog

from service.domain import (
    Export,
    ExportRun,
    ExportRunTrigger,
    Frequency,
    Recurrence,
    RefreshSchedule,
    ScheduleMode,
    utcnow,
)

if TYPE_CHECKING:
    from service.core import Services

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]


def _instant(day: date, hhmm: str, zone: ZoneInfo) -> datetime:
    hours, minutes = hhmm.split(":")
    # fold=0: a skipped time maps with the offset before the jump (so it is shifted
    # forward by the gap); a repeated time maps to its first occurrence.
    local = datetime.combine(day, time(int(hours), int(minutes)), tzinfo=zone)
    return local.astimezone(UTC)


def due_times(recurrence: Recurrence, after: datetime, until: datetime) -> list[datetime]:
    """The UTC instants in ``(after, until]`` at which ``recurrence`` is due, in order."""
    if until <= after:
        return []
    zone = ZoneInfo(recurrence.timezone)
    # One day of margin each side covers any UTC offset.
    first = after.astimezone(zone).date() - timedelta(days=1)
    last = until.astimezone(zone).date() + timedelta(days=1)
    weekly = recurrence.frequency is Frequency.WEEKLY
    weekdays = set(recurrence.weekdays)
    instants: set[datetime] = set()
    day = first
    while day <= last:
        if not weekly or day.isoweekday() in weekdays:
            for hhmm in recurrence.times:
                instant = _instant(day, hhmm, zone)
                if after < instant <= until:
                    instants.add(instant)
        day += timedelta(days=1)
    return sorted(instants)


def next_due(recurrence: Recurrence, after: datetime) -> datetime | None:
    """The first instant strictly after ``after`` (None for a weekly rule with no weekdays)."""
    found = due_times(recurrence, after, after + timedelta(days=8))
    return found[0] if found else None


def export_recurrence(
    export: Export, refresh: RefreshSchedule
) -> tuple[Recurrence, ExportRunTrigger] | None:
    """The recurrence an export follows now, and the trigger its runs record."""
    mode = export.schedule.mode
    if mode is ScheduleMode.REFRESH_SCHEDULE:
        return (refresh.recurrence, ExportRunTrigger.REFRESH_SCHEDULE) if refresh.enabled else None
    if mode is ScheduleMode.OWN and export.schedule.recurrence is not None:
        return export.schedule.recurrence, ExportRunTrigger.EXPORT_SCHEDULE
    return None


def dedupe_key(export_id: str, due: datetime) -> str:
    return f"{export_id}@{due.astimezone(UTC).isoformat()}"


async def scheduled_requester(services: Services, export: Export) -> str | None:
    """Whom a scheduled run of ``export`` is recorded as requested by.

    The connection's export user: scheduled runs go out under the authority of
    the user an admin added to the connection for that. Without one (or without
    a connection, which the run itself then reports) the export's creator.
    """
    if export.connection_id is not None:
        connection = await services.store.get_connection(export.connection_id)
        if connection is not None and connection.export_user:
            return connection.export_user
    return export.created_by


async def tick(services: Services, since: datetime, now: datetime) -> list[ExportRun]:
    """Request a run for every export due in ``(since, now]``; returns the runs made here."""
    from service.runs.coordinator import (
        ActiveRunExistsError,
        DuplicateRunError,
        RunRequestError,
    )

    store = services.store
    refresh = await store.get_refresh_schedule()
    made: list[ExportRun] = []
    for export in await store.list_scheduled_exports():
        followed = export_recurrence(export, refresh)
        if followed is None:
            continue
        recurrence, trigger = followed
        dues = due_times(recurrence, since, now)
        if not dues:
            continue
        # Several due times missed at once (a long pause): one run, for the latest.
        due = dues[-1]
        key = dedupe_key(export.id, due)
        if not await store.claim_once(f"schedule:{key}", due + timedelta(days=2)):
            continue
        requester = await scheduled_requester(services, export)
        try:
            run = await services.runs.request_run(export.id, trigger, requester, dedupe_key=key)
        except DuplicateRunError:
            continue
        except ActiveRunExistsError as problem:
            await services.runs.record_skipped(
                export.id,
                trigger,
                requester,
                key,
                f"Skipped: the run due at {due.isoformat()} found run {problem.run_id!r} "
                "still active.",
            )
            continue
        except RunRequestError as problem:
            log.warning(
                "scheduled_run_not_made",
                export_id=export.id,
                due=due.isoformat(),
                code=problem.code,
                reason=problem.message,
            )
            continue
        made.append(run)
    return made


class ScheduleTicker:
    """Remembers the previous tick, so each tick covers the time since (with an injected clock)."""

    def __init__(self, services: Services, clock: Clock = utcnow) -> None:
        self.services = services
        self.clock = clock
        self.last: datetime | None = None

    async def tick(self) -> list[ExportRun]:
        now = self.clock()
        # The first tick of a process looks back one tick period: due times while no
        # process was ticking are not replayed in a burst after downtime.
        since = self.last or now - timedelta(seconds=self.services.settings.schedule_tick_seconds)
        runs = await tick(self.services, since, now)
        self.last = now
        return runs
