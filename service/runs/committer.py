"""The committer: applies finished batches to the run strictly in order, and follows their
receipts until the destination confirms them.

After each batch it writes counts, progress and the checkpoint in one store
operation, so the counts always describe exactly the profiles up to the
checkpoint's ``last_profile_id``.

Batches also start in order (:meth:`Committer.begin`), so that when the process
stops (:meth:`Committer.stop`) the batches already sent are exactly the ones
after the checkpoint: waiting for them to be answered and committing them
leaves nothing sent that a resumed run would send again.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace

from service.domain import RunCounts, RunError
from service.plugins.api import (
    BatchOutcome,
    Confirmation,
    ConfirmationFailed,
    DestinationError,
    DestinationSession,
    UploadBatch,
)
from service.runs.checkpoint import PendingReceipt
from service.runs.errors import RunCancelled, RunFailed
from service.runs.state import RunState
from service.runs.sync import LedgerTriple, SyncPlan
from service.store.base import LedgerChanges, LedgerOutcome

CONFIRMS_IN_FLIGHT = 4
"""Receipts followed at once (each follow polls the destination's API)."""


@dataclass(slots=True)
class BatchWork:
    """One stretch of the profile stream: its records (if any) and what its profiles counted."""

    seq: int
    batch: UploadBatch | None
    last_profile_id: str | None
    read: int = 0
    sent: int = 0
    invalid: int = 0
    duplicate: int = 0
    unchanged: int = 0
    cannot_add: int = 0
    """Of ``unchanged``: contacts the destination keeps off the list (cannotAddToList)."""
    marks: list[int] = field(default_factory=list)
    """Key ids of unchanged records whose entries become CANNOT_ADD."""
    entries: list[LedgerTriple] = field(default_factory=list)
    """(key id, sealed key, fingerprint) of the batch's records whose ledger entries change
    once the destination takes them."""
    entry_profiles: list[str] = field(default_factory=list)
    """The profile id of each of ``entries``."""
    entry_marks: list[tuple[str, int, LedgerOutcome]] = field(default_factory=list)
    """(profile id, key id, outcome) of those of ``entries`` written as other than SENT."""
    field_warnings: int = 0
    errors: list[RunError] = field(default_factory=list)
    outcome: BatchOutcome | None = None
    uploaded: int = 0
    """Records in the batch once it is sent (the records themselves are let go then)."""


class Committer:
    """Applies finished batches in order and follows their receipts."""

    def __init__(
        self, state: RunState, session: DestinationSession, *, window: int, plan: SyncPlan
    ) -> None:
        self.state = state
        self.session = session
        self.plan = plan
        self.window = window
        self.next_seq = 0
        """The next batch to commit (every batch before it is in the checkpoint)."""
        self.next_start = 0
        """The next batch to start; those from ``next_seq`` up to it are under way."""
        self._stopping = False
        self._finished: dict[int, BatchWork] = {}
        self._lock = asyncio.Lock()
        self._turn = asyncio.Condition()
        self._confirms: set[asyncio.Task[None]] = set()
        self._confirm_slots = asyncio.Semaphore(CONFIRMS_IN_FLIGHT)
        self._error: BaseException | None = None
        for receipt in state.receipts.values():
            self._follow(receipt)

    async def begin(self, seq: int) -> bool:
        """Wait until batch ``seq`` may start: after every batch before it started, and at
        most ``window`` batches ahead of the checkpoint (flat memory). False: the run is
        stopping, and the batch must not go out."""
        async with self._turn:
            await self._turn.wait_for(
                lambda: (
                    self._stopping or (seq == self.next_start and seq < self.next_seq + self.window)
                )
            )
            if self._stopping:
                return False
            self.next_start += 1
            self._turn.notify_all()
        return True

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called (batches may have been held back since)."""
        return self._stopping

    async def stop(self) -> None:
        """Start no more batches, and return once every batch under way is committed (its
        answer in, its receipt in the checkpoint)."""
        async with self._turn:
            self._stopping = True
            self._turn.notify_all()
            await self._turn.wait_for(lambda: self.next_seq == self.next_start)

    async def done(self, work: BatchWork) -> None:
        if self._error is not None:
            raise self._error
        self._finished[work.seq] = work
        async with self._lock:
            while self.next_seq in self._finished:
                await self._commit(self._finished.pop(self.next_seq))
                self.next_seq += 1
                async with self._turn:
                    self._turn.notify_all()

    async def _commit(self, work: BatchWork) -> None:
        state = self.state
        counts = state.counts
        counts.profiles_read += work.read
        counts.contacts_sent += work.sent
        counts.skipped_invalid += work.invalid
        counts.skipped_duplicate += work.duplicate
        counts.skipped_unchanged += work.unchanged
        counts.cannot_add_to_list += work.cannot_add
        counts.field_warnings += work.field_warnings
        outcome = work.outcome
        ledger = None
        if outcome is not None:
            refused = outcome.batch_error is not None
            ledger = self.plan.confirmed(
                work.entries,
                work.entry_profiles,
                work.entry_marks,
                outcome.rejected,
                batch_refused=refused,
            )
            records = work.uploaded
            _apply_outcome(state, counts, outcome, records)
            if outcome.receipt is not None and outcome.batch_error is None:
                receipt = PendingReceipt(outcome.receipt, records - outcome.accepted)
                state.receipts[receipt.receipt] = receipt
                self._follow(receipt)
        if work.marks:
            ledger = ledger or LedgerChanges(self.plan.export.id, self.plan.run_no)
            ledger.marked += [(key_id, LedgerOutcome.CANNOT_ADD) for key_id in work.marks]
        state.last_profile_id = work.last_profile_id
        if await state.write(publish=True, ledger=ledger) is None:
            raise RunFailed("The run was finished elsewhere.")
        if state.cancel_seen:
            raise RunCancelled()

    def _follow(self, receipt: PendingReceipt) -> None:
        task = asyncio.create_task(self._confirm(receipt))
        self._confirms.add(task)
        task.add_done_callback(self._confirm_done)

    def _confirm_done(self, task: asyncio.Task[None]) -> None:
        self._confirms.discard(task)
        error = None if task.cancelled() else task.exception()
        if error is not None and self._error is None:
            self._error = error

    async def _confirm(self, receipt: PendingReceipt) -> None:
        failure: str | None = None
        async with self._confirm_slots:
            try:
                confirmation = await self.session.confirm(receipt.receipt)
            except ConfirmationFailed as failed:
                # The destination gave up on the receipt: its exact counts still count.
                failure = str(failed)
                confirmation = replace(
                    failed.confirmation, failure=failed.confirmation.failure or failure
                )
        state = self.state
        _apply_confirmation(state, receipt, confirmation)
        state.receipts.pop(receipt.receipt, None)
        failure = failure or confirmation.failure
        # A failed import: which of its records the destination holds is unknown.
        ledger = self.plan.forget() if failure is not None else None
        await state.write(publish=True, ledger=ledger)
        if failure is not None and not state.cancel_seen:
            # A receipt the destination did not complete (after the plugin's re-sends)
            # means the run did not do what it was asked: it fails with their words.
            raise DestinationError(failure)

    async def drain(self) -> None:
        """Wait for every receipt; a confirmation's failure ends the run with it."""
        while self._confirms:
            await asyncio.wait(set(self._confirms))
        if self._error is not None:
            raise self._error

    def cancel(self) -> None:
        for task in list(self._confirms):
            task.cancel()


def _apply_outcome(state: RunState, counts: RunCounts, outcome: BatchOutcome, records: int) -> None:
    if outcome.batch_error is not None:
        counts.rejected_by_destination += records
        state.sample(RunError(code="BATCH_REJECTED", message=outcome.batch_error))
        return
    counts.accepted_by_destination += outcome.accepted
    counts.rejected_by_destination += len(outcome.rejected)
    counts.cannot_add_to_list += len(outcome.cannot_add_to_list)
    counts.field_warnings += len(outcome.field_warnings)
    for warning in outcome.field_warnings:
        state.sample(
            RunError(
                code=warning.code,
                message=warning.reason,
                profile_id=warning.profile_id,
                field=warning.field,
            )
        )
    for rejected in [*outcome.rejected, *outcome.cannot_add_to_list]:
        state.sample(
            RunError(
                code=rejected.rejection.code,
                message=rejected.rejection.message,
                profile_id=rejected.profile_id,
                field=rejected.rejection.field,
            )
        )


def _apply_confirmation(state: RunState, receipt: PendingReceipt, done: Confirmation) -> None:
    counts = state.counts
    counts.accepted_by_destination += done.accepted
    counts.rejected_by_destination += done.rejected
    counts.cannot_add_to_list += done.cannot_add_to_list
    for sample in done.error_samples:
        state.sample(RunError(code="DESTINATION_REJECTED", message=sample))
    if done.failure is not None:
        unaccounted = receipt.records - done.accepted - done.rejected - done.cannot_add_to_list
        counts.rejected_by_destination += max(0, unaccounted)
        state.sample(RunError(code="DESTINATION_FAILED", message=done.failure))
