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
from datetime import UTC, datetime, timedelta

import structlog

from service.coordination.run_requests import (
    ActiveRunExistsError,
    DuplicateRunError,
    RunRequestError,
)
from service.domain import Export, ExportRun, utcnow
from service.domain.schedule import due_times, export_recurrence
from service.runs.context import RunContext

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]


def dedupe_key(export_id: str, due: datetime) -> str:
    return f"{export_id}@{due.astimezone(UTC).isoformat()}"


async def scheduled_requester(ctx: RunContext, export: Export) -> str | None:
    """Whom a scheduled run of ``export`` is recorded as requested by.

    The connection's export user: scheduled runs go out under the authority of
    the user an admin added to the connection for that. Without one (or without
    a connection, which the run itself then reports) the export's creator.
    """
    if export.connection_id is not None:
        connection = await ctx.store.get_connection(export.connection_id)
        if connection is not None and connection.export_user:
            return connection.export_user
    return export.created_by


async def tick(ctx: RunContext, since: datetime, now: datetime) -> list[ExportRun]:
    """Request a run for every export due in ``(since, now]``; returns the runs made here."""
    store = ctx.store
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
        requester = await scheduled_requester(ctx, export)
        try:
            run = await ctx.requests.request_run(export.id, trigger, requester, dedupe_key=key)
        except DuplicateRunError:
            continue
        except ActiveRunExistsError as problem:
            await ctx.requests.record_skipped(
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

    def __init__(self, ctx: RunContext, clock: Clock = utcnow) -> None:
        self.ctx = ctx
        self.clock = clock
        self.last: datetime | None = None

    async def tick(self) -> list[ExportRun]:
        now = self.clock()
        # The first tick of a process looks back one tick period: due times while no
        # process was ticking are not replayed in a burst after downtime.
        since = self.last or now - timedelta(seconds=self.ctx.settings.schedule_tick_seconds)
        runs = await tick(self.ctx, since, now)
        self.last = now
        return runs
