"""A run's committed state: the counts and checkpoint acknowledged so far, and the one way
they are written (one store operation, then a run event)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime

from service.coordination.events import RunEvents
from service.domain import RUN_ERROR_SAMPLE_SIZE, ExportRun, RunError, utcnow
from service.runs.checkpoint import Checkpoint, PendingReceipt
from service.runs.mapping import ErrorSample
from service.store.base import LedgerChanges, RunProgress, Store


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
        self.errors = ErrorSample(limit=max(0, RUN_ERROR_SAMPLE_SIZE - len(run.errors)))
        self.cancel_seen = run.cancel_requested
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
        )

    def progress_value(self) -> float:
        total = self.counts.profiles_total
        value = min(1.0, self.counts.profiles_read / total) if total else 0.0
        # Progress never goes backwards, whatever the store held before.
        return max(self.progress, value)

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
        message = reason if until is None else f"{reason} (until {until.isoformat()})"
        await self._state.write(message=message, publish=True)

    def cancelled(self) -> bool:
        return self._state.cancel_seen
