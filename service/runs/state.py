"""A run's committed state: the counts and checkpoint acknowledged so far, and the one way
they are written (one store operation, then a run event)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime

from service.coordination.events import RunEvents
from service.domain import RUN_ERROR_SAMPLE_SIZE, ExportRun, RunError, utcnow
from service.runs.checkpoint import Checkpoint, PendingReceipt
from service.runs.mapping import ErrorSample
from service.store.base import LedgerChanges, RunProgress, Store

ALMOST_DONE = 0.99
"""The most a run's progress says before the run has succeeded."""


def waiting_message(reason: str, until: datetime | None) -> str:
    """What a waiting run says: the reason, and when it resumes (once, in UTC)."""
    if until is None:
        return reason
    when = until.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{reason.rstrip('. ')}; resumes at {when}"


class RunState:
    """Counts and checkpoint as acknowledged so far, and the one way they are written."""

    def __init__(self, store: Store, events: RunEvents, run: ExportRun) -> None:
        self.store = store
        self.events = events
        self.run = run
        self.counts = replace(run.counts)
        self.progress = run.progress
        checkpoint = Checkpoint.from_json(run.checkpoint)
        self.last_profile_id: str | None = checkpoint.last_profile_id
        self.receipts: dict[str, PendingReceipt] = {
            receipt.receipt: receipt for receipt in checkpoint.pending_receipts
        }
        self.full_resync = checkpoint.full_resync
        self.ledger_note = checkpoint.ledger_note
        self.whole_list = checkpoint.whole_list
        self.errors = ErrorSample(limit=max(0, RUN_ERROR_SAMPLE_SIZE - len(run.errors)))
        self.cancel_seen = run.cancel_requested
        self.destination_processed = 0
        """Records the destination reports done among those it still processes
        (:meth:`PipelineReporter.destination_progress`)."""
        self._lock = asyncio.Lock()

    def checkpoint(self, *, released: bool = False) -> Checkpoint:
        return Checkpoint(
            last_profile_id=self.last_profile_id,
            pending_receipts=tuple(self.receipts.values()),
            # A fresh heartbeat says "a job is on this run"; a released run may be
            # picked up by another worker at once.
            heartbeat_at=None if released else utcnow(),
            full_resync=self.full_resync,
            ledger_note=self.ledger_note,
            whole_list=self.whole_list,
        )

    def progress_value(self) -> float:
        """Reading and the destination's account count half each (as ``segport run
        --follow`` shows it): a profile read, then skipped or settled by the destination;
        records the destination reports processed count as settled. 1.0 only once done."""
        counts = self.counts
        total = counts.profiles_total
        value = 0.0
        if total:
            unsettled = sum(receipt.records for receipt in self.receipts.values())
            processing = min(self.destination_processed, unsettled)
            settled = counts.contacts_sent - unsettled + processing
            done = counts.profiles_read + counts.skipped_invalid + counts.skipped_duplicate
            value = min(ALMOST_DONE, (done + max(0, settled)) / (2 * total))
        # Progress never goes backwards, whatever the store held before.
        return max(self.progress, value)

    @contextlib.asynccontextmanager
    async def beating(self, seconds: float) -> AsyncIterator[None]:
        """Write the run's heartbeat every ``seconds`` while the body waits on something
        slow outside the pipeline's own watcher (the destination reading its list, a
        removal), so that no other job takes the run for abandoned meanwhile."""

        async def beat() -> None:
            while True:
                await asyncio.sleep(seconds)
                await self.write(publish=False)

        task = asyncio.create_task(beat())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def write(
        self,
        *,
        message: str | None = None,
        publish: bool = True,
        released: bool = False,
        ledger: LedgerChanges | None = None,
    ) -> ExportRun | None:
        """One store write of the current state (plus newly sampled errors, and ``ledger``:
        the export's ledger changes this state confirms), then an event."""
        async with self._lock:
            self.progress = self.progress_value()
            progress = RunProgress(
                counts=replace(self.counts),
                progress=self.progress,
                checkpoint=self.checkpoint(released=released).to_json(),
                new_errors=self.errors.take(),
                message=message,
                ledger=ledger,
            )
            updated = await self.store.record_run_progress(self.run.id, progress)
            if updated is None:
                return None
            self.run = updated
            if updated.cancel_requested:
                self.cancel_seen = True
        if publish:
            await self.events.publish(updated)
        return updated

    def sample(self, error: RunError) -> None:
        self.errors.add(error)


class PipelineReporter:
    """The :class:`~service.plugins.api.RunReporter` of one run."""

    def __init__(self, state: RunState) -> None:
        self._state = state

    async def waiting(self, reason: str, until: datetime | None = None) -> None:
        await self._state.write(message=waiting_message(reason, until), publish=True)

    async def destination_progress(self, processed: int, total: int) -> None:
        state = self._state
        if processed > state.destination_processed or processed == 0:
            state.destination_processed = max(0, processed)
            await state.write(publish=True)

    def cancelled(self) -> bool:
        return self._state.cancel_seen
