"""Parsing and validation of recurrences: when the refresh schedule or an export runs.

One function, :func:`parse_recurrence`, checks every recurrence the service
accepts (the system refresh schedule and exports' own schedules), so the two
can never disagree. Computing due times belongs to the scheduler, not here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from service.domain import Frequency, Recurrence

MAX_TIMES_PER_DAY = 4
_TIME = re.compile(r"([01]\d|2[0-3]):[0-5]\d")


@dataclass(frozen=True, slots=True)
class RecurrenceProblem:
    """One thing wrong with a recurrence; ``field`` names the input field."""

    field: str
    message: str
    code: str = "INVALID"


class InvalidRecurrence(ValueError):
    """A recurrence that cannot be used; ``problems`` lists every reason."""

    def __init__(self, problems: list[RecurrenceProblem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = problems


def parse_recurrence(
    frequency: Frequency | str,
    times: Sequence[str],
    timezone: str,
    weekdays: Sequence[int] = (),
) -> Recurrence:
    """A valid :class:`Recurrence`, or :class:`InvalidRecurrence` naming each bad value.

    Rules: frequency DAILY or WEEKLY; 1 to 4 distinct ``HH:MM`` 24-hour times
    (returned sorted); an IANA time zone known to ``zoneinfo``; for WEEKLY, a
    non-empty set of ISO weekdays (1 = Monday .. 7 = Sunday), ignored for DAILY.
    """
    problems: list[RecurrenceProblem] = []

    parsed_frequency: Frequency | None = None
    try:
        parsed_frequency = Frequency(frequency)
    except ValueError:
        problems.append(
            RecurrenceProblem("frequency", f"{frequency!r} is not DAILY or WEEKLY", "INVALID")
        )

    problems.extend(_time_problems(times))

    if not _is_time_zone(timezone):
        problems.append(
            RecurrenceProblem(
                "timeZone",
                f"{timezone!r} is not an IANA time zone (e.g. Europe/Paris)",
                "INVALID_TIME_ZONE",
            )
        )

    days: list[int] = []
    if parsed_frequency is Frequency.WEEKLY:
        if not weekdays:
            problems.append(
                RecurrenceProblem("weekdays", "a weekly recurrence needs weekdays", "REQUIRED")
            )
        for day in weekdays:
            if not 1 <= day <= 7:
                problems.append(
                    RecurrenceProblem("weekdays", f"{day!r} is not an ISO weekday (1..7)")
                )
        if len(set(weekdays)) != len(weekdays):
            problems.append(RecurrenceProblem("weekdays", "a weekday is given twice", "DUPLICATE"))
        days = sorted(set(weekdays))

    if problems or parsed_frequency is None:
        raise InvalidRecurrence(problems)
    return Recurrence(
        frequency=parsed_frequency, times=sorted(times), timezone=timezone, weekdays=days
    )


def _time_problems(times: Sequence[str]) -> list[RecurrenceProblem]:
    problems: list[RecurrenceProblem] = []
    if not 1 <= len(times) <= MAX_TIMES_PER_DAY:
        problems.append(
            RecurrenceProblem(
                "times",
                f"give 1 to {MAX_TIMES_PER_DAY} times a day, not {len(times)}",
                "TOO_MANY_TIMES" if times else "REQUIRED",
            )
        )
    for value in times:
        if not _TIME.fullmatch(value):
            problems.append(
                RecurrenceProblem("times", f"{value!r} is not a 24-hour HH:MM time", "INVALID_TIME")
            )
    if len(set(times)) != len(times):
        problems.append(RecurrenceProblem("times", "a time is given twice", "DUPLICATE"))
    return problems


def _is_time_zone(name: str) -> bool:
    if not name or name != name.strip():
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        # ValueError: malformed keys such as absolute paths or "..".
        return False
    return True
