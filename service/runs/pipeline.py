"""The run pipeline: read a segment, map and encode it, upload it, confirm it, checkpoint it.

Stages are tasks joined by bounded queues, so reading, encoding and
uploading overlap and memory stays flat however large the segment is:

    reader --profiles--> assembler --batches--> uploaders (N in flight) --> committer

The committer applies finished batches strictly in order: after each one it
writes counts, progress and the checkpoint in ONE store operation and
publishes the run. The checkpoint's ``last_profile_id`` is the last profile
whose batch the destination acknowledged, and the counts always describe
exactly the profiles up to it. A resumed run therefore starts right after it
with those counts; the records sent after it but not checkpointed are sent
again (the destination's import is idempotent per e-mail) and counted once.
De-duplication state is not stored: a resumed run rebuilds it by mapping the
already-checkpointed profiles again without sending them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog

from service.domain import (
    Connection,
    ConnectionStatus,
    Export,
    ExportRun,
    ExportRunStatus,
    RunCounts,
    RunError,
    utcnow,
)
from service.plugins.api import (
    AuthorizationLost,
    BatchOutcome,
    Confirmation,
    Destination,
    DestinationContext,
    DestinationError,
    DestinationSession,
    EncodedRecord,
    TransientDestinationError,
    UploadBatch,
)
from service.plugins.batching import ContactBatcher
from service.runs.mapping import ErrorSample, RecordMapper
from service.store.base import RunProgress

if TYPE_CHECKING:
    from service.core import Services

log = structlog.get_logger(__name__)

CONFIRMS_IN_FLIGHT = 4
"""Receipts followed at once (each follow polls the destination's API)."""
YIELD_EVERY = 256
"""Profiles mapped between two yields to the event loop (a few milliseconds of work)."""


class RunInterrupted(Exception):
    """The run stopped without an outcome (shutdown, transient trouble); it can resume."""


class TransientRunError(RunInterrupted):
    """Worth retrying later: the job layer retries with backoff, then fails the run."""


class RunCancelled(Exception):
    """The run was asked to stop (raised inside the pipeline's task group)."""


class RunFailed(Exception):
    """A permanent failure decided before or during the run; the message is the run's."""

    def __init__(self, message: str, status: ExportRunStatus = ExportRunStatus.FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


# -- units of work ------------------------------------------------------------------------


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
    errors: list[RunError] = field(default_factory=list)
    outcome: BatchOutcome | None = None
    uploaded: int = 0
    """Records in the batch once it is sent (the records themselves are let go then)."""


@dataclass(slots=True)
class PendingReceipt:
    receipt: str
    records: int

    def to_json(self) -> dict[str, Any]:
        return {"receipt": self.receipt, "records": self.records}


# -- the reporter the destination sees -----------------------------------------------------


class PipelineReporter:
    """The :class:`~service.plugins.api.RunReporter` of one run."""

    def __init__(self, state: RunState) -> None:
        self._state = state

    async def waiting(self, reason: str, until: datetime | None = None) -> None:
        message = reason if until is None else f"{reason} (until {until.isoformat()})"
        await self._state.write(message=message, publish=True)

    def cancelled(self) -> bool:
        return self._state.cancel_seen


# -- the run's committed state ----------------------------------------------------------------


class RunState:
    """Counts and checkpoint as acknowledged so far, and the one way they are written."""

    def __init__(self, services: Services, run: ExportRun) -> None:
        self.services = services
        self.run = run
        self.counts = replace(run.counts)
        self.progress = run.progress
        checkpoint = run.checkpoint or {}
        self.last_profile_id: str | None = checkpoint.get("last_profile_id")
        self.receipts: dict[str, PendingReceipt] = {
            r["receipt"]: PendingReceipt(r["receipt"], int(r["records"]))
            for r in checkpoint.get("pending_receipts", [])
        }
        self.errors = ErrorSample(limit=max(0, _error_room(run)))
        self.cancel_seen = run.cancel_requested
        self._lock = asyncio.Lock()

    def checkpoint(self, *, released: bool = False) -> dict[str, Any]:
        return {
            "last_profile_id": self.last_profile_id,
            "pending_receipts": [r.to_json() for r in self.receipts.values()],
            # A fresh heartbeat says "a job is on this run"; a released run may be
            # picked up by another worker at once.
            "heartbeat_at": None if released else utcnow().isoformat(),
        }

    def _progress_value(self) -> float:
        total = self.counts.profiles_total
        value = min(1.0, self.counts.profiles_read / total) if total else 0.0
        # Progress never goes backwards, whatever the store held before.
        return max(self.progress, value)

    async def write(
        self, *, message: str | None = None, publish: bool = True, released: bool = False
    ) -> ExportRun | None:
        """One store write of the current state (plus newly sampled errors), then an event."""
        async with self._lock:
            self.progress = self._progress_value()
            progress = RunProgress(
                counts=replace(self.counts),
                progress=self.progress,
                checkpoint=self.checkpoint(released=released),
                new_errors=self.errors.take(),
                message=message,
            )
            updated = await self.services.store.record_run_progress(self.run.id, progress)
            if updated is None:
                return None
            self.run = updated
            if updated.cancel_requested:
                self.cancel_seen = True
        if publish:
            await self.services.events.publish(updated)
        return updated

    def sample(self, error: RunError) -> None:
        self.errors.add(error)


def _error_room(run: ExportRun) -> int:
    from service.domain import RUN_ERROR_SAMPLE_SIZE

    return RUN_ERROR_SAMPLE_SIZE - len(run.errors)


# -- entry point ------------------------------------------------------------------------------


async def execute_run(services: Services, run_id: str) -> ExportRun | None:
    """Carry run ``run_id`` to a terminal state, or leave it resumable.

    A terminal or missing run is left alone (returns it / None). A QUEUED run
    starts; a RUNNING one resumes from its checkpoint. Raises
    :class:`RunInterrupted` (or :class:`TransientRunError`) when the run stops
    without an outcome, and re-raises task cancellation unless the run was
    asked to stop, in which case it ends CANCELLED.
    """
    store = services.store
    run = await store.get_run(run_id)
    if run is None or run.status.is_terminal:
        return run
    now = utcnow()
    started = await store.update_run(
        run_id,
        expected_status=[run.status],
        status=ExportRunStatus.RUNNING,
        started_at=run.started_at or now,
        attempt=run.attempt + 1,
        checkpoint={**run.checkpoint, "heartbeat_at": now.isoformat()},
    )
    if started is None:  # cancelled or taken meanwhile
        return await store.get_run(run_id)
    await services.events.publish(started)
    state = RunState(services, started)
    try:
        await _run(services, state)
    except RunFailed as failed:
        return await finish(services, state, failed.status, failed.message)
    except AuthorizationLost as exc:
        return await finish(services, state, ExportRunStatus.FAILED, str(exc))
    except TransientDestinationError as exc:
        await _release(state)
        raise TransientRunError(str(exc)) from exc
    except DestinationError as exc:
        return await finish(services, state, ExportRunStatus.FAILED, str(exc))
    except RunCancelled:
        return await finish(services, state, ExportRunStatus.CANCELLED, _cancel_message(state))
    except Exception:
        await _release(state)
        raise
    except asyncio.CancelledError:
        # Either an abort (the user cancelled) or a shutdown: tell them apart by the flag.
        current = await asyncio.shield(store.get_run(run_id))
        if current is not None and current.cancel_requested:
            await asyncio.shield(
                finish(services, state, ExportRunStatus.CANCELLED, _cancel_message(state))
            )
        else:
            await asyncio.shield(_release(state))
        raise
    return await finish(services, state, ExportRunStatus.SUCCEEDED, None)


def _cancel_message(state: RunState) -> str:
    return f"Cancelled after {state.counts.contacts_sent} contacts were sent."


async def _release(state: RunState) -> None:
    """Checkpoint and mark the run free for another job to resume it at once."""
    with contextlib.suppress(Exception):
        await state.write(publish=False, released=True)


async def finish(
    services: Services, state: RunState, status: ExportRunStatus, message: str | None
) -> ExportRun | None:
    """Move the run to a terminal ``status`` with its final counts, publish, notify."""
    if status is ExportRunStatus.SUCCEEDED:
        state.progress = 1.0
    else:
        state.progress = state._progress_value()
    new_errors = state.errors.take()
    if new_errors:
        await state.services.store.record_run_progress(
            state.run.id,
            RunProgress(
                counts=replace(state.counts),
                progress=state.progress,
                checkpoint=state.checkpoint(released=True),
                new_errors=new_errors,
            ),
        )
    done = await services.store.update_run(
        state.run.id,
        expected_status=[ExportRunStatus.RUNNING],
        status=status,
        finished_at=utcnow(),
        counts=replace(state.counts),
        progress=state.progress,
        message=message,
        checkpoint=state.checkpoint(released=True),
    )
    if done is None:
        return await services.store.get_run(state.run.id)
    services.metrics.record_run_finished(done)
    await services.events.publish(done)
    log.info(
        "run_finished",
        run_id=done.id,
        export_id=done.export_id,
        status=str(status),
        sent=done.counts.contacts_sent,
        read=done.counts.profiles_read,
    )
    if status is ExportRunStatus.FAILED:
        from service.runs.notify import notify_failure

        await notify_failure(services, done)
    return done


# -- the run itself ------------------------------------------------------------------------------


async def _prepare(services: Services, run: ExportRun) -> tuple[Export, Connection, Destination]:
    store = services.store
    export = await store.get_export(run.export_id)
    if export is None:
        raise RunFailed(f"Export {run.export_id!r} no longer exists.")
    if export.connection_id is None:
        raise RunFailed(
            f"Export {export.display_name!r} is detached from its connection; "
            "attach a connection before running it."
        )
    connection = await store.get_connection(export.connection_id)
    if connection is None:
        raise RunFailed(
            f"Connection {export.connection_id!r} of export {export.display_name!r} "
            "no longer exists."
        )
    if connection.status is ConnectionStatus.NEEDS_REAUTHORIZATION:
        why = f": {connection.status_message}" if connection.status_message else "."
        raise RunFailed(
            f"Connection {connection.display_name!r} needs re-authorization{why} "
            "An admin must authorize it again."
        )
    if connection.status is ConnectionStatus.PENDING_AUTHORIZATION:
        raise RunFailed(f"Connection {connection.display_name!r} has not been authorized yet.")
    destination = services.destinations.get(export.destination_type)
    if destination is None:
        raise RunFailed(
            f"Destination type {export.destination_type!r} is not installed on this server."
        )
    return export, connection, destination


async def _run(services: Services, state: RunState) -> None:
    export, connection, destination = await _prepare(services, state.run)
    store = services.store
    limits = destination.limits
    total = await store.count_segment_members(export.segment_ids)
    state.counts.profiles_total = total
    if limits.max_profiles_per_export is not None and total > limits.max_profiles_per_export:
        raise RunFailed(
            f"The segments hold {total} profiles, more than the "
            f"{limits.max_profiles_per_export} that {destination.display_name} accepts "
            "in one export; nothing was sent.",
            status=ExportRunStatus.SKIPPED,
        )
    await state.write(publish=True)
    if state.cancel_seen:
        raise RunCancelled()

    reporter = PipelineReporter(state)
    from service.connections.context import destination_context

    ctx: DestinationContext = await destination_context(
        services.destination_access, connection, export_settings=export.settings, reporter=reporter
    )
    session = destination.open_session(ctx)
    try:
        await _stream(services, state, export, destination, session)
    finally:
        with contextlib.suppress(Exception):
            await asyncio.shield(session.aclose())


async def _stream(
    services: Services,
    state: RunState,
    export: Export,
    destination: Destination,
    session: DestinationSession,
) -> None:
    limits = destination.limits
    envelope = destination.batch_envelope_size(export.settings)
    with RecordMapper(destination, export.field_mapping, envelope_size=envelope) as mapper:
        if state.last_profile_id is not None:
            await _replay(services, export, mapper, state.last_profile_id)
        await _pipe(services, state, export, mapper, ContactBatcher(limits, envelope), session)


async def _pipe(
    services: Services,
    state: RunState,
    export: Export,
    mapper: RecordMapper,
    batcher: ContactBatcher,
    session: DestinationSession,
) -> None:
    settings = services.settings
    limits = mapper.destination.limits
    profiles_q: asyncio.Queue[list[Any] | None] = asyncio.Queue(settings.run_queue_size)
    work_q: asyncio.Queue[BatchWork | None] = asyncio.Queue(1)
    uploaders = max(1, limits.max_concurrent_uploads)
    committer = Committer(state, session, window=2 * uploaders)

    async def read() -> None:
        async for profiles in _members(services, export, state.last_profile_id):
            await profiles_q.put(profiles)
        await profiles_q.put(None)

    async def assemble() -> None:
        await _assemble(profiles_q, work_q, mapper, batcher, state)
        for _ in range(uploaders):
            await work_q.put(None)

    async def upload() -> None:
        while (work := await work_q.get()) is not None:
            await committer.wait_turn(work.seq)
            if state.cancel_seen:
                raise RunCancelled()
            if work.batch is not None:
                work.outcome = await session.upload(work.batch)
                # Sent: only the count matters now; batches waiting for their turn to be
                # committed must not hold tens of thousands of records each.
                work.uploaded, work.batch = len(work.batch.records), None
            await committer.done(work)

    async def watch() -> None:
        # Heartbeat (so a crashed worker's run is noticed) and cancellation polling.
        interval = settings.run_heartbeat_seconds
        while True:
            await asyncio.sleep(interval)
            if await state.write(publish=False) is None:
                raise RunFailed("The run was finished elsewhere.")
            if state.cancel_seen:
                raise RunCancelled()

    try:
        async with asyncio.TaskGroup() as group:
            watcher = group.create_task(watch())
            stages = [group.create_task(read()), group.create_task(assemble())]
            stages += [group.create_task(upload()) for _ in range(uploaders)]

            async def conclude() -> None:
                await asyncio.gather(*stages)
                await committer.drain()
                watcher.cancel()

            group.create_task(conclude())
    except BaseExceptionGroup as failures:
        _raise_first(failures)
    finally:
        committer.cancel()


def _raise_first(group: BaseExceptionGroup[BaseException]) -> None:
    """Re-raise the exception that decides the run's outcome (the most meaningful one)."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    order: tuple[type[BaseException], ...] = (
        AuthorizationLost,
        RunFailed,
        TransientDestinationError,
        DestinationError,
        RunCancelled,
        Exception,
    )
    for kind in order:
        for exc in leaves:
            if isinstance(exc, kind):
                raise exc
    raise leaves[0]


async def _members(
    services: Services, export: Export, after: str | None
) -> AsyncIterator[list[Any]]:
    async for profiles in services.store.iter_segment_members(
        export.segment_ids, after_profile_id=after, batch_size=services.settings.run_read_batch_size
    ):
        yield profiles


async def _replay(services: Services, export: Export, mapper: RecordMapper, upto: str) -> None:
    """Rebuild the de-duplication state of the profiles already checkpointed."""
    async for profiles in _members(services, export, None):
        for profile in profiles:
            if profile.id > upto:
                return
            mapper.map(profile)  # takes the key of every record that was sent
        await asyncio.sleep(0)


async def _assemble(
    profiles_q: asyncio.Queue[list[Any] | None],
    work_q: asyncio.Queue[BatchWork | None],
    mapper: RecordMapper,
    batcher: ContactBatcher,
    state: RunState,
) -> None:
    """Map each profile and cut batches; each emitted work covers a contiguous stretch."""
    seq = 0
    work = BatchWork(seq=seq, batch=None, last_profile_id=state.last_profile_id)
    sample = state.sample

    async def emit(batch: UploadBatch | None) -> None:
        nonlocal seq, work
        work.batch = batch
        await work_q.put(work)
        seq += 1
        work = BatchWork(seq=seq, batch=None, last_profile_id=work.last_profile_id)

    while (profiles := await profiles_q.get()) is not None:
        for index, profile in enumerate(profiles):
            if index % YIELD_EVERY == YIELD_EVERY - 1:
                # Mapping is CPU work on the event loop; let requests already admitted by
                # the rate limiter go out now, not after the whole read batch (the
                # destination counts them on arrival).
                await asyncio.sleep(0)
            out = mapper.map(profile)
            if isinstance(out, EncodedRecord):
                closed = batcher.add(out)
                if closed is not None:
                    await emit(closed)
                work.sent += 1
            elif out.code == "DUPLICATE":
                work.duplicate += 1
                sample(out)
            else:
                work.invalid += 1
                sample(out)
            work.read += 1
            work.last_profile_id = profile.id
        if batcher.pending == 0 and work.read:
            # A stretch of skipped profiles only: checkpoint it without a request.
            await emit(None)
    last = batcher.flush()
    if last is not None or work.read:
        await emit(last)


class Committer:
    """Applies finished batches in order and follows their receipts."""

    def __init__(self, state: RunState, session: DestinationSession, *, window: int) -> None:
        self.state = state
        self.session = session
        self.window = window
        self.next_seq = 0
        self._finished: dict[int, BatchWork] = {}
        self._lock = asyncio.Lock()
        self._turn = asyncio.Condition()
        self._confirms: set[asyncio.Task[None]] = set()
        self._confirm_slots = asyncio.Semaphore(CONFIRMS_IN_FLIGHT)
        self._error: BaseException | None = None
        for receipt in state.receipts.values():
            self._follow(receipt)

    async def wait_turn(self, seq: int) -> None:
        """Keep uploads at most ``window`` batches ahead of the checkpoint (flat memory)."""
        async with self._turn:
            await self._turn.wait_for(lambda: seq < self.next_seq + self.window)

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
        outcome = work.outcome
        if outcome is not None:
            records = work.uploaded
            _apply_outcome(state, counts, outcome, records)
            if outcome.receipt is not None and outcome.batch_error is None:
                receipt = PendingReceipt(outcome.receipt, records - outcome.accepted)
                state.receipts[receipt.receipt] = receipt
                self._follow(receipt)
        state.last_profile_id = work.last_profile_id
        if await state.write(publish=True) is None:
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
        async with self._confirm_slots:
            confirmation = await self.session.confirm(receipt.receipt)
        state = self.state
        _apply_confirmation(state, receipt, confirmation)
        state.receipts.pop(receipt.receipt, None)
        await state.write(publish=True)

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
    for rejected in outcome.rejected:
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


async def note_retry(services: Services, run_id: str, message: str) -> None:
    """Say on an unfinished run why it waits for another attempt, and tell subscribers."""
    run = await services.store.update_run(
        run_id,
        expected_status=[ExportRunStatus.QUEUED, ExportRunStatus.RUNNING],
        message=message,
    )
    if run is not None:
        await services.events.publish(run)


async def fail_run(services: Services, run_id: str, message: str) -> ExportRun | None:
    """Fail an active run from outside the pipeline (e.g. after the last retry)."""
    run = await services.store.get_run(run_id)
    if run is None or run.status.is_terminal:
        return run
    if run.status is ExportRunStatus.QUEUED:
        run = await services.store.update_run(
            run_id, expected_status=[ExportRunStatus.QUEUED], status=ExportRunStatus.RUNNING
        )
        if run is None:
            return await services.store.get_run(run_id)
    return await finish(services, RunState(services, run), ExportRunStatus.FAILED, message)


def heartbeat_age(run: ExportRun, now: datetime) -> timedelta | None:
    """How long since a job last said it is on ``run`` (None: released or never started)."""
    value = (run.checkpoint or {}).get("heartbeat_at")
    if not value:
        return None
    return now - datetime.fromisoformat(value)
