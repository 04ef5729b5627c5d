"""Asking for runs and cancelling them: the one place that creates a run.

The API, the CLI and the schedule all go through :class:`RunCoordinator`, so
the rules hold everywhere: a detached export cannot run, an export has one
active run at a time, a scheduled due time makes one run however many
processes tick at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from service.coordination.events import RunEvents
from service.coordination.queue import RunQueue
from service.domain import (
    Export,
    ExportRun,
    ExportRunStatus,
    ExportRunTrigger,
    ScheduleMode,
    new_id,
    utcnow,
)
from service.observability.metrics import Metrics
from service.store.base import ActiveRunExists, DuplicateRun, Store

log = structlog.get_logger(__name__)

QUEUE_UNAVAILABLE_MESSAGE = (
    "Queued, waiting for the job queue to answer: the run is stored and starts as soon "
    "as the queue (Redis) is reachable again."
)
"""The message of a run whose job could not be enqueued; the recovery sweep enqueues it
and its start clears the message."""


class RunRequestError(Exception):
    """A run cannot be made or changed as asked; ``code`` names the reason, stable for callers."""

    code = "INVALID"

    def __init__(self, message: str, *, export_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.export_id = export_id


class NotFoundError(RunRequestError):
    code = "NOT_FOUND"


class ExportDetachedError(RunRequestError):
    code = "EXPORT_DETACHED"


class ActiveRunExistsError(RunRequestError):
    code = "ACTIVE_RUN_EXISTS"

    def __init__(self, message: str, *, export_id: str, run_id: str) -> None:
        super().__init__(message, export_id=export_id)
        self.run_id = run_id


class DuplicateRunError(RunRequestError):
    """A scheduled due time already has its run."""

    code = "DUPLICATE_RUN"


class ForbiddenError(RunRequestError):
    code = "FORBIDDEN"


class RunFinishedError(RunRequestError):
    code = "RUN_FINISHED"


@dataclass(slots=True)
class RunAllResult:
    runs: list[ExportRun]
    problems: list[RunRequestError]


class RunCoordinator:
    """Makes, skips and cancels runs: stores them, announces them, hands them to the queue."""

    def __init__(self, store: Store, events: RunEvents, queue: RunQueue, metrics: Metrics) -> None:
        self.store = store
        self.events = events
        self.queue = queue
        self.metrics = metrics

    async def request_run(
        self,
        export_id: str,
        trigger: ExportRunTrigger,
        requested_by: str | None,
        dedupe_key: str | None = None,
        *,
        full_resync: bool = False,
        whole_list: int | None = None,
    ) -> ExportRun:
        """Create a QUEUED run of the export, announce it and hand it to the queue.

        ``full_resync``: the run sends every record whatever the export's ledger says.
        ``whole_list``: a whole-list mirror run, allowed to remove that many members
        outside the export (checked by the caller against a preview's confirmation)."""
        store = self.store
        export = await store.get_export(export_id)
        if export is None:
            raise NotFoundError(f"Export {export_id!r} does not exist.", export_id=export_id)
        if export.connection_id is None:
            raise ExportDetachedError(
                f"Export {export.display_name!r} is detached from its connection; "
                "attach a connection before running it.",
                export_id=export_id,
            )
        run = ExportRun(
            id=new_id(),
            export_id=export_id,
            status=ExportRunStatus.QUEUED,
            trigger=trigger,
            requested_by=requested_by,
            queued_at=utcnow(),
            dedupe_key=dedupe_key,
            # The checkpoint's shape (service.runs.checkpoint) carries the request to the job.
            checkpoint={
                **({"full_resync": True} if full_resync else {}),
                **({"whole_list": whole_list} if whole_list is not None else {}),
            },
        )
        try:
            await store.insert_run(run)
        except ActiveRunExists as exc:
            raise ActiveRunExistsError(
                f"Export {export.display_name!r} already has an active run {exc.run_id!r}; "
                "wait for it to end or cancel it.",
                export_id=export_id,
                run_id=exc.run_id,
            ) from exc
        except DuplicateRun as exc:
            raise DuplicateRunError(
                f"The run for {exc.dedupe_key!r} was already made.", export_id=export_id
            ) from exc
        await self.events.publish(run)
        try:
            await self.queue.enqueue(run.id)
        except Exception as exc:
            # The run is stored; the recovery sweep gives it a job once the queue answers.
            log.warning("run_not_enqueued", run_id=run.id, exc_info=exc)
            run = await self._note_not_enqueued(run)
        log.info("run_requested", run_id=run.id, export_id=export_id, trigger=str(trigger))
        return run

    async def _note_not_enqueued(self, run: ExportRun) -> ExportRun:
        """Say on the run that no job carries it yet (whoever asked for it sees why)."""
        noted = await self.store.update_run(
            run.id, expected_status=[ExportRunStatus.QUEUED], message=QUEUE_UNAVAILABLE_MESSAGE
        )
        if noted is None:  # cancelled meanwhile: it needs no job
            return await self.store.get_run(run.id) or run
        await self.events.publish(noted)
        return noted

    async def record_skipped(
        self,
        export_id: str,
        trigger: ExportRunTrigger,
        requested_by: str | None,
        dedupe_key: str,
        reason: str,
    ) -> ExportRun | None:
        """Record a scheduled occurrence that could not run as a SKIPPED run, with why.

        The history then shows every due time and its own outcome (the platform we
        mirror shows nothing, or a misleading status). None when the due time already
        has its run (another worker recorded it).
        """
        now = utcnow()
        run = ExportRun(
            id=new_id(),
            export_id=export_id,
            status=ExportRunStatus.SKIPPED,
            trigger=trigger,
            requested_by=requested_by,
            queued_at=now,
            finished_at=now,
            message=reason,
            dedupe_key=dedupe_key,
        )
        try:
            await self.store.insert_run(run)
        except DuplicateRun:
            return None
        self.metrics.record_run_finished(run)
        await self.events.publish(run)
        log.info("run_skipped", run_id=run.id, export_id=export_id, trigger=str(trigger))
        return run

    async def cancel_run(self, run_id: str, by: str | None) -> ExportRun:
        """Ask the run to stop: a QUEUED run ends at once, a RUNNING one within seconds."""
        store = self.store
        run = await store.get_run(run_id)
        if run is None:
            raise NotFoundError(f"Run {run_id!r} does not exist.")
        if run.status.is_terminal:
            raise RunFinishedError(
                f"Run {run_id!r} already ended ({run.status}); there is nothing to cancel.",
                export_id=run.export_id,
            )
        updated = await store.request_run_cancel(run_id)
        if updated is None:
            raise NotFoundError(f"Run {run_id!r} does not exist.")
        if updated.status is ExportRunStatus.CANCELLED:
            self.metrics.record_run_finished(updated)
        await self.events.publish(updated)
        if updated.status is ExportRunStatus.RUNNING:
            try:
                await self.queue.abort(run_id)
            except Exception:
                # The pipeline polls the cancel flag too; the abort only makes it quicker.
                log.warning("run_abort_not_sent", run_id=run_id, exc_info=True)
        log.info("run_cancel_requested", run_id=run_id, by=by)
        return updated

    async def run_all_detailed(
        self,
        requested_by: str | None,
        *,
        may_run: Callable[[Export], Awaitable[bool]] | None = None,
    ) -> RunAllResult:
        """Run every export whose schedule mode is not OFF; the ones that cannot run
        (detached, a run already active, refused by ``may_run``) are reported, not fatal."""
        store = self.store
        result = RunAllResult(runs=[], problems=[])
        after: str | None = None
        while True:
            page = await store.list_exports(first=100, after=after)
            for export in page.items:
                if export.schedule.mode is ScheduleMode.OFF:
                    continue
                if may_run is not None and not await may_run(export):
                    result.problems.append(
                        ForbiddenError(
                            f"Your role may not run export {export.display_name!r}.",
                            export_id=export.id,
                        )
                    )
                    continue
                try:
                    run = await self.request_run(
                        export.id, ExportRunTrigger.ON_DEMAND, requested_by
                    )
                except RunRequestError as problem:
                    result.problems.append(problem)
                else:
                    result.runs.append(run)
            if not page.has_next_page or not page.items:
                return result
            after = page.items[-1].id
