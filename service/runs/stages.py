"""The stages of a run: tasks joined by bounded queues, so reading, encoding and uploading
overlap and memory stays flat however large the segment is::

    reader --profiles--> assembler --batches--> uploaders (N in flight) --> committer

A watcher beside them writes the heartbeat and polls the cancel flag. When the
process is asked to stop (``stopping``), no batch starts any more; the ones under
way are answered and committed, then the run stops resumable
(:class:`~service.runs.errors.RunStopped`) with nothing sent after its
checkpoint. A resumed run first maps the already-checkpointed profiles again without sending
them, to rebuild its de-duplication state (which is not stored).
"""

from __future__ import annotations

import asyncio
from bisect import bisect_right
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing

import structlog

from service.domain import Export, Profile
from service.plugins.api import (
    AuthorizationLost,
    Destination,
    DestinationError,
    DestinationSession,
    EncodedRecord,
    TransientDestinationError,
    UploadBatch,
)
from service.plugins.batching import ContactBatcher
from service.runs import split_run
from service.runs.committer import BatchWork, Committer
from service.runs.context import RunSettings
from service.runs.errors import RunCancelled, RunFailed, RunStopped
from service.runs.helper import Done, HelperFailed, Spool, helper_messages
from service.runs.mapping import RecordMapper
from service.runs.removals import remove_leavers
from service.runs.split_run import RunPartTask, WalkedBatch, can_split, walk_run_part
from service.runs.state import RunState
from service.runs.sync import UNCHANGED, SyncPlan, Unchanged
from service.runs.warnings import warning_errors
from service.settings import Settings
from service.store.base import Store

log = structlog.get_logger(__name__)

YIELD_EVERY = 256
"""Profiles mapped between two yields to the event loop (a few milliseconds of work)."""


async def stream_run(
    store: Store,
    settings: RunSettings,
    state: RunState,
    export: Export,
    destination: Destination,
    session: DestinationSession,
    stopping: asyncio.Event,
    plan: SyncPlan,
    helper_settings: Settings | None = None,
) -> None:
    """Send the export's profiles after the checkpoint through ``session`` (those the
    ``plan`` does not skip as unchanged), committing as batches are acknowledged; then,
    for a mirror, remove the leavers. Returns when every batch is committed and confirmed.
    ``helper_settings``: what a helper process that walks the second half of a large
    changes run opens the store with (:mod:`service.runs.split_run`; None: no helper).

    Raises :class:`~service.runs.errors.RunStopped` once ``stopping`` is set and the
    batches under way are committed."""
    limits = destination.limits
    envelope = destination.batch_envelope_size(export.settings)
    expected = state.counts.profiles_total
    with RecordMapper(
        destination, export.field_mapping, envelope_size=envelope, expected=expected
    ) as mapper:
        if state.last_profile_id is not None:
            await _replay(store, settings, export, mapper, state.last_profile_id)
        batcher = ContactBatcher(limits, envelope)
        reader = _Reader(store, settings, state, export, destination, plan, helper_settings)
        await _pipe(reader, settings, state, mapper, batcher, session, stopping, plan)
        if plan.removes:
            batch = limits.removal_batch_max_records
            beat = settings.run_heartbeat_seconds
            await remove_leavers(state, plan, mapper.seen, session, batch, stopping, beat)


async def _pipe(
    reader: _Reader,
    settings: RunSettings,
    state: RunState,
    mapper: RecordMapper,
    batcher: ContactBatcher,
    session: DestinationSession,
    stopping: asyncio.Event,
    plan: SyncPlan,
) -> None:
    limits = mapper.destination.limits
    profiles_q: asyncio.Queue[list[Profile] | WalkedBatch | None] = asyncio.Queue(
        settings.run_queue_size
    )
    work_q: asyncio.Queue[BatchWork | None] = asyncio.Queue(1)
    uploaders = max(1, limits.max_concurrent_uploads)
    committer = Committer(state, session, window=2 * uploaders, plan=plan)

    async def read() -> None:
        # Closed when the run stops or fails, so that a helper walking with it ends too.
        async with aclosing(reader.batches()) as batches:
            async for profiles in batches:
                await profiles_q.put(profiles)
        await profiles_q.put(None)

    async def assemble() -> None:
        await _assemble(profiles_q, work_q, mapper, batcher, state, plan)
        for _ in range(uploaders):
            await work_q.put(None)

    async def upload() -> None:
        while (work := await work_q.get()) is not None:
            if not await committer.begin(work.seq):
                return  # stopping: the batch stays for the resumed run
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

    async def stop_when_asked() -> None:
        await stopping.wait()
        # Receipts need no waiting: they are in the checkpoint, the resumed run follows them.
        await committer.stop()
        raise RunStopped()

    try:
        async with asyncio.TaskGroup() as group:
            watcher = group.create_task(watch())
            stopper = group.create_task(stop_when_asked())
            stages = [group.create_task(read()), group.create_task(assemble())]
            stages += [group.create_task(upload()) for _ in range(uploaders)]

            async def conclude() -> None:
                await asyncio.gather(*stages)
                if committer.stopping:
                    return  # batches were held back: the stopper ends the run
                await session.uploads_done()
                await committer.drain()
                # Every batch confirmed: the run is done, whether or not a stop came.
                watcher.cancel()
                stopper.cancel()

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
        RunStopped,
        Exception,
    )
    for kind in order:
        for exc in leaves:
            if isinstance(exc, kind):
                raise exc
    raise leaves[0]


async def _members(
    store: Store, settings: RunSettings, export: Export, after: str | None
) -> AsyncGenerator[list[Profile]]:
    async for profiles in store.iter_segment_members(
        export.segment_ids, after_profile_id=after, batch_size=settings.run_read_batch_size
    ):
        yield profiles


class _Reader:
    """The run's profiles after its checkpoint, batch by batch: read here, or, for the
    second half of a large changes run, classified by a helper process
    (:mod:`service.runs.split_run`) while this process maps the first."""

    def __init__(
        self,
        store: Store,
        settings: RunSettings,
        state: RunState,
        export: Export,
        destination: Destination,
        plan: SyncPlan,
        helper_settings: Settings | None,
    ) -> None:
        self.store, self.settings, self.state, self.export = store, settings, state, export
        self.destination, self.plan, self.helper_settings = destination, plan, helper_settings

    async def batches(self) -> AsyncGenerator[list[Profile] | WalkedBatch]:
        after = self.state.last_profile_id
        task = await self._helper_task()
        if task is None:
            async for profiles in _members(self.store, self.settings, self.export, after):
                yield profiles
            return
        last_here = task.after_profile_id
        # The helper's batches wait on disk while this process walks the first half.
        async with Spool(helper_messages(walk_run_part, task)) as walked:
            members = _members(self.store, self.settings, self.export, after)
            async with aclosing(members):
                async for profiles in members:
                    if profiles[-1].id > last_here:  # the first half ends in this batch
                        ids = [p.id for p in profiles]
                        if head := profiles[: bisect_right(ids, last_here)]:
                            yield head
                        break
                    yield profiles
            after = last_here
            log.info(
                "run_first_half_walked",
                run_id=self.state.run.id,
                helper_batches_waiting=len(walked),
                helper_bytes_spooled=walked.on_disk,
            )
            try:
                while not isinstance(item := await walked.get(), Done):
                    assert isinstance(item, WalkedBatch)
                    after = item.last_profile_id
                    yield item
            except HelperFailed as exc:
                log.warning("run_helper_failed", run_id=self.state.run.id, error=str(exc))
            else:
                log.info("run_helper_joined", run_id=self.state.run.id, complete=item.value)
                if item.value:  # it walked to the end
                    return
        async for profiles in _members(self.store, self.settings, self.export, after):
            yield profiles

    async def _helper_task(self) -> RunPartTask | None:
        """The helper's part of the walk, when it has one: the second half."""
        least, total = self.settings.split_min_profiles, self.state.counts.profiles_total
        resumed = self.state.last_profile_id is not None
        if (
            self.helper_settings is None
            or not least
            or total < max(least, 2)
            or not can_split(self.plan, self.destination, resumed=resumed)
        ):
            return None
        here = total // 2
        last_here = await self.store.segment_member_at(self.export.segment_ids, here - 1)
        if last_here is None:  # the segment shrank since it was counted
            return None
        log.info("run_helper_started", run_id=self.state.run.id, profiles_here=here)
        return RunPartTask(
            self.helper_settings,
            self.export,
            self.destination,
            self.plan.run_no,
            self.plan.index,
            self.plan.cannot_add,
            after_profile_id=last_here,
            expected=total - here,
            batch_size=self.settings.run_read_batch_size,
            most_to_send=split_run.MOST_TO_SEND,
        )


async def _replay(
    store: Store, settings: RunSettings, export: Export, mapper: RecordMapper, upto: str
) -> None:
    """Rebuild the de-duplication state of the profiles already checkpointed."""
    async for profiles in _members(store, settings, export, None):
        done = [profile for profile in profiles if profile.id <= upto]
        for start in range(0, len(done), YIELD_EVERY):
            # Takes the key of every record that was sent, a chunk at a time.
            mapper.map_many(done[start : start + YIELD_EVERY])
            await asyncio.sleep(0)
        if len(done) < len(profiles):
            return


async def _assemble(
    profiles_q: asyncio.Queue[list[Profile] | WalkedBatch | None],
    work_q: asyncio.Queue[BatchWork | None],
    mapper: RecordMapper,
    batcher: ContactBatcher,
    state: RunState,
    plan: SyncPlan,
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
        ids: Sequence[str] | _ProfileIds
        if isinstance(profiles, WalkedBatch):  # the helper classified it (split_run)
            classified, ids = profiles.classified(mapper.seen)
            await asyncio.sleep(0)
        else:
            # Maps the batch in chunks (yielding to the event loop between them, so
            # requests the rate limiter admitted go out now) and asks the ledger once.
            classified = await plan.classify(mapper, profiles)
            ids = _ProfileIds(profiles)
        size = len(classified.outcomes)
        entries, marked, found = classified.entries, classified.marked, classified.warnings
        # The run's hottest loop after the mapping: what every record adds to ``work`` is
        # counted here and added when the stretch ends (a batch closes, or this one ends).
        begun = sent = 0  # where the stretch of ``work`` begins in this batch; its records
        add_entry, add_profile = work.entries.append, work.entry_profiles.append
        for position, out in enumerate(classified.outcomes):
            if isinstance(out, EncodedRecord):
                closed = batcher.add(out)
                if closed is not None:
                    # The batch closed before this record: the stretch ends before it.
                    work.sent += sent
                    work.read += position - begun
                    if position > begun:
                        work.last_profile_id = ids[position - 1]
                    begun, sent = position, 0
                    await emit(closed)
                    add_entry, add_profile = work.entries.append, work.entry_profiles.append
                entry = entries[position]
                if entry is not None:
                    add_entry(entry)
                    add_profile(out.profile_id)
                    if marked and position in marked:
                        work.entry_marks.append((out.profile_id, entry[0], marked[position]))
                sent += 1
                if warnings := found[position]:
                    work.field_warnings += len(warnings)
                    for error in warning_errors(out.profile_id, warnings):
                        sample(error)
            elif out is UNCHANGED:
                work.unchanged += 1
            elif isinstance(out, Unchanged):
                work.unchanged += 1
                work.cannot_add += out.cannot_add
                if out.mark is not None:
                    work.marks.append(out.mark)
            elif out.code == "DUPLICATE":
                work.duplicate += 1
                sample(out)
            else:
                work.invalid += 1
                sample(out)
        work.sent += sent
        work.read += size - begun
        if size > begun:
            work.last_profile_id = ids[size - 1]
        if batcher.pending == 0 and work.read:
            # A stretch of skipped profiles only: checkpoint it without a request.
            await emit(None)
    last = batcher.flush()
    if last is not None or work.read:
        await emit(last)


class _ProfileIds:
    """The ids of a read batch's profiles, by position."""

    __slots__ = ("_profiles",)

    def __init__(self, profiles: Sequence[Profile]) -> None:
        self._profiles = profiles

    def __getitem__(self, position: int) -> str:
        return self._profiles[position].id
