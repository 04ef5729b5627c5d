"""When a recurrence is due: wall-clock times in an IANA zone, turned into UTC instants.

Due times are turned into instants the way calendars do (RFC 5545): a time
that does not exist on a spring-forward day runs once at the shifted instant
(02:30 becomes 03:30 in Paris on 2026-03-29), and a time that happens twice on
a fall-back day runs once, at its first occurrence. Two local times that land
on the same instant run once.

Pure functions of the domain: the schedule tick (:mod:`service.runs.schedule`)
and the API's ``nextRunAt`` both use them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from service.domain.model import (
    Export,
    ExportRunTrigger,
    Frequency,
    Recurrence,
    RefreshSchedule,
    ScheduleMode,
)


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
