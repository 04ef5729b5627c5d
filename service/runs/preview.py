"""``previewExport``: what a run of an export would do now, sending nothing.

It walks the segment exactly as a run does (the same mapping, de-duplication and
ledger lookups, :class:`~service.runs.sync.SyncPlan`), counts instead of uploading,
and for a mirror counts the leavers the removal phase would ask for. A reset the
next run would make (another list, connection or mapping) is taken into account
without being made: the ledger is only read.
"""

from __future__ import annotations

import asyncio
import pickle
from array import array
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime

import orjson
import structlog

from service.access.ledger_seal import LedgerSeal
from service.domain import (
    PREVIEW_SAMPLE_SIZE,
    Export,
    PreviewedContact,
    Profile,
    SyncMode,
    SyncPreview,
)
from service.plugins.api import Destination, EncodedRecord
from service.runs.context import RunContext
from service.runs.errors import RunFailed
from service.runs.heap import FrozenHeap
from service.runs.helper import HelperFailed, PackedTexts, in_helper_process
from service.runs.mapping import RecordMapper, SeenKeys
from service.runs.removals import leavers
from service.runs.sync import (
    Classified,
    SyncPlan,
    Unchanged,
    ledger_basis,
    ledger_reset,
    reset_note,
)
from service.runs.whole_list import confirmation, outsiders
from service.settings import Settings
from service.store import open_store
from service.store.base import LedgerReset, Store

log = structlog.get_logger(__name__)

NO_RUN = -1
"""The run ordinal a preview looks with: no entry has it (a run's are 1 and up)."""


class _QuietReporter:
    """A preview reports to no run (its destination reads are few and quick)."""

    async def waiting(self, reason: str, until: datetime | None = None) -> None:
        return None

    def cancelled(self) -> bool:
        return False

    async def destination_progress(self, processed: int, total: int) -> None:
        return None


async def preview_export(
    ctx: RunContext, export: Export, *, whole_list: bool = False
) -> SyncPreview:
    """The numbers the next run of ``export`` would have, and its first records.

    ``whole_list``: as a whole-list mirror run would (service.runs.whole_list), reading the
    list's members from the destination, and with the confirmation such a run needs.

    A segment of at least ``split_min_profiles`` is walked in two parts at once:
    the first here, the rest in a helper process (:func:`_walk_part`), joined as one walk
    of the whole segment would have counted them (:func:`_join`)."""
    destination = ctx.find_destination(export.destination_type)
    if destination is None:
        raise RunFailed(f"Destination type {export.destination_type!r} is not installed.")
    if whole_list and not (
        export.sync_mode is SyncMode.MIRROR and destination.can_read_list_standing
    ):
        raise RunFailed(
            f"A whole-list preview needs a MIRROR export of a destination that can list "
            f"its members; export {export.display_name!r} is not one."
        )
    store = ctx.store
    previous = await store.ledger_state(export.id)
    reset, why = ledger_reset(previous, ledger_basis(export, ctx.seal))
    expected = await store.count_segment_members(export.segment_ids)
    split = await _split(ctx, destination, expected)
    try:
        return await _preview(ctx, export, destination, reset, why, expected, split, whole_list)
    except _PartNotJoined:
        # The helper's part cannot be joined exactly (see _join): walk it all here.
        return await _preview(ctx, export, destination, reset, why, expected, None, whole_list)


async def _preview(
    ctx: RunContext,
    export: Export,
    destination: Destination,
    reset: LedgerReset,
    why: str | None,
    expected: int,
    split: int | None,
    whole_list: bool,
) -> SyncPreview:
    """:func:`preview_export`, with the first ``split`` profiles here and the rest in a
    helper process (all here when None)."""
    store = ctx.store
    preview = SyncPreview()
    sends_changes = export.sync_mode in (SyncMode.SEND_CHANGES, SyncMode.MIRROR)
    if sends_changes and why is not None:
        preview.note = reset_note(why)
    envelope = destination.batch_envelope_size(export.settings)
    last_here = (
        None if split is None else await store.segment_member_at(export.segment_ids, split - 1)
    )
    part: asyncio.Task[PartWalk] | None = None
    # A walk streams the segment as a run does, with a run's collector settings.
    with (
        ctx.heap.held(),
        RecordMapper(
            destination, export.field_mapping, envelope_size=envelope, expected=expected
        ) as mapper,
    ):
        if last_here is not None and ctx.helper_settings is not None:
            task = PartTask(
                ctx.helper_settings,
                export,
                destination,
                reset,
                after_profile_id=last_here,
                expected=expected - (split or 0),
                batch_size=ctx.settings.run_read_batch_size,
            )
            part = asyncio.create_task(in_helper_process(_walk_part, task))
        try:
            plan = _plan(store, ctx.seal, export, reset)
            if reset is not LedgerReset.CLEAR:
                await plan.load_index()
            await _walk_segment(
                plan,
                mapper,
                preview,
                ctx.settings.run_read_batch_size,
                until=last_here if part is not None else None,
            )
            if part is not None:
                try:
                    joined = await part
                except HelperFailed as exc:
                    log.warning("preview_helper_failed", export_id=export.id, error=str(exc))
                    joined = None
                part = None
                if joined is None:
                    await _walk_segment(
                        plan, mapper, preview, ctx.settings.run_read_batch_size, after=last_here
                    )
                elif not _join(preview, mapper.seen, joined):
                    raise _PartNotJoined
        finally:
            if part is not None:
                part.cancel()
        if plan.removes and reset is not LedgerReset.CLEAR:
            async for keys, _ in leavers(store, ctx.seal, export.id, mapper.seen, NO_RUN):
                preview.to_remove += len(keys)
        if whole_list:
            found = await _outsiders(ctx, export, destination, plan, mapper.seen)
            preview.outside_export = found
            preview.to_remove += found
            preview.whole_list_confirmation = confirmation(ctx.seal, export.id, found)
    return preview


async def _split(ctx: RunContext, destination: Destination, expected: int) -> int | None:
    """How many profiles the preview walks here when a helper process walks the rest
    (None: it walks them all here)."""
    least = ctx.settings.split_min_profiles
    if ctx.helper_settings is None or not least or expected < max(least, 2):
        return None
    try:
        pickle.dumps(destination)
    except Exception:  # a destination that cannot travel is walked here
        return None
    return expected // 2


def _plan(store: Store, seal: LedgerSeal, export: Export, reset: LedgerReset) -> SyncPlan:
    """The plan a preview walks with: the next run's, judging by the ledger as it is."""
    sends_changes = export.sync_mode in (SyncMode.SEND_CHANGES, SyncMode.MIRROR)
    return SyncPlan(
        store=store,
        seal=seal,
        export=export,
        run_no=NO_RUN,
        skip_unchanged=sends_changes,
        removes=export.sync_mode is SyncMode.MIRROR,
        pending_reset=reset,
    )


async def _walk_segment(
    plan: SyncPlan,
    mapper: RecordMapper,
    preview: SyncPreview,
    batch_size: int,
    *,
    after: str | None = None,
    until: str | None = None,
    taken: Taken | None = None,
) -> None:
    """Classify the segment's profiles after ``after`` up to ``until`` (both profile ids;
    None: from the first, to the last) as the run would, counting instead of sending."""
    batches: asyncio.Queue[list[Profile] | None] = asyncio.Queue(2)

    async def read() -> None:
        # Reading ahead (as a run's reader does), so the next batch is there when wanted.
        async for profiles in plan.store.iter_segment_members(
            plan.export.segment_ids, after_profile_id=after, batch_size=batch_size
        ):
            if until is not None and profiles[-1].id > until:
                ids = [p.id for p in profiles]
                await batches.put(profiles[: bisect_right(ids, until)])
                break
            await batches.put(profiles)
        await batches.put(None)

    reader = asyncio.create_task(read())
    try:
        await _walk(plan, mapper, batches, preview, taken)
        await reader
    finally:
        reader.cancel()


async def _walk(
    plan: SyncPlan,
    mapper: RecordMapper,
    batches: asyncio.Queue[list[Profile] | None],
    preview: SyncPreview,
    taken: Taken | None = None,
) -> None:
    """Classify every batch as the run would, counting instead of sending; ``taken``
    learns each record taken (a helper's part, see :func:`_join`)."""
    while (profiles := await batches.get()) is not None:
        classified = await plan.classify(mapper, profiles, keep_keyed=taken is not None)
        preview.to_add += classified.added
        preview.to_update += classified.changed - classified.added + classified.resent
        if taken is not None:
            taken.learn(classified, plan, len(preview.sample))
        for out, warnings in zip(classified.outcomes, classified.warnings, strict=True):
            if isinstance(out, Unchanged):
                preview.unchanged += 1
            elif isinstance(out, EncodedRecord):
                preview.field_warnings += len(warnings)  # as the run counts them: sent ones
                if len(preview.sample) < PREVIEW_SAMPLE_SIZE:
                    preview.sample.append(PreviewedContact(out.profile_id, _shown(out)))
            elif out.code == "DUPLICATE":
                preview.skipped_duplicate += 1
            else:
                preview.skipped_invalid += 1


# -- the helper's part ------------------------------------------------------------

UNCHANGED_KIND, ADDED_KIND, UPDATED_KIND = 0, 1, 2
"""What a record taken is to the preview: unchanged, to add, to update."""


@dataclass(slots=True)
class Taken:
    """Each record a part's walk took (to send, or unchanged), in order: its
    de-duplication key, its kind and its field warnings; and, of the sample, the
    position among them of each record. (The keys travel as they are: neither key ids
    nor Python's hashes, which differ from process to process, could be matched against
    the joining walk's key set.)"""

    keys: PackedTexts = field(default_factory=PackedTexts)
    kinds: bytearray = field(default_factory=bytearray)
    warnings: array[int] = field(default_factory=lambda: array("I"))
    sampled: list[int] = field(default_factory=list)

    def learn(self, classified: Classified, plan: SyncPlan, sampled: int) -> None:
        """The records ``classified`` took (``sampled``: the sample's size before it)."""
        keyed = classified.keyed
        assert keyed is not None
        self.keys.extend(keyed.keys)
        find = plan.index.get
        for position, _, key_id, _ in keyed:
            out = classified.outcomes[position]
            if isinstance(out, Unchanged):
                self.kinds.append(UNCHANGED_KIND)
                self.warnings.append(0)
                continue
            entry = classified.entries[position]
            added = entry is not None and find(key_id) is None
            self.kinds.append(ADDED_KIND if added else UPDATED_KIND)
            self.warnings.append(len(classified.warnings[position]))
            if sampled < PREVIEW_SAMPLE_SIZE:
                self.sampled.append(len(self.kinds) - 1)
                sampled += 1


@dataclass(frozen=True, slots=True)
class PartTask:
    """A helper's part of a preview: the profiles after ``after_profile_id``."""

    settings: Settings
    export: Export
    destination: Destination
    reset: LedgerReset
    after_profile_id: str
    expected: int
    batch_size: int


@dataclass(slots=True)
class PartWalk:
    """What a helper's part found: its own numbers (as if it were the whole segment) and
    the records it took."""

    preview: SyncPreview
    taken: Taken


def _walk_part(task: PartTask) -> PartWalk:
    """The helper process's side (:mod:`service.runs.helper`)."""
    return asyncio.run(_walk_part_async(task))


async def _walk_part_async(task: PartTask) -> PartWalk:
    store = await open_store(task.settings)
    try:
        seal = LedgerSeal(task.settings.encryption_keys())
        plan = _plan(store, seal, task.export, task.reset)
        if task.reset is not LedgerReset.CLEAR:
            await plan.load_index()
        preview, taken = SyncPreview(), Taken()
        envelope = task.destination.batch_envelope_size(task.export.settings)
        with (
            FrozenHeap().held(),
            RecordMapper(
                task.destination,
                task.export.field_mapping,
                envelope_size=envelope,
                expected=task.expected,
            ) as mapper,
        ):
            await _walk_segment(
                plan, mapper, preview, task.batch_size, after=task.after_profile_id, taken=taken
            )
        return PartWalk(preview, taken)
    finally:
        await store.close()


class _PartNotJoined(Exception):
    """The sample cannot be completed from what the helper sent back."""


def _join(preview: SyncPreview, seen: SeenKeys, part: PartWalk) -> bool:
    """Add a helper's part (the profiles after those walked here) to ``preview``, as one
    walk of both would have counted it; False (``preview`` and ``seen`` then unusable) if
    the sample cannot be completed from it.

    The one thing the helper could not know is which of its records an earlier profile
    took already ("the first profile in id order wins"): its keys, taken into
    ``seen``, tell; those are duplicates instead of what the helper counted them as."""
    taken, found = part.taken, part.preview
    kinds = taken.kinds
    fresh = bytearray()
    for keys in taken.keys.chunks():
        fresh += bytes(seen.add_many(keys))
    counts = [found.unchanged, found.to_add, found.to_update]
    warnings = found.field_warnings
    duplicates = 0
    start = 0
    while (index := fresh.find(0, start)) >= 0:  # each record an earlier profile took
        counts[kinds[index]] -= 1
        warnings -= taken.warnings[index]
        duplicates += 1
        start = index + 1
    preview.unchanged += counts[UNCHANGED_KIND]
    preview.to_add += counts[ADDED_KIND]
    preview.to_update += counts[UPDATED_KIND]
    preview.field_warnings += warnings
    preview.skipped_invalid += found.skipped_invalid
    preview.skipped_duplicate += found.skipped_duplicate + duplicates
    for index, contact in zip(taken.sampled, found.sample, strict=True):
        if fresh[index] and len(preview.sample) < PREVIEW_SAMPLE_SIZE:
            preview.sample.append(contact)
    if len(preview.sample) < PREVIEW_SAMPLE_SIZE:
        # Records past the helper's sample that would have been sampled here.
        after = taken.sampled[-1] + 1 if taken.sampled else 0
        return not any(fresh[i] and kinds[i] != UNCHANGED_KIND for i in range(after, len(fresh)))
    return True


async def _outsiders(
    ctx: RunContext, export: Export, destination: Destination, plan: SyncPlan, seen: SeenKeys
) -> int:
    """How many members of the list a whole-list mirror run would also remove."""
    connection_id = export.connection_id
    connection = None if connection_id is None else await ctx.store.get_connection(connection_id)
    if connection is None:
        raise RunFailed(f"Export {export.display_name!r} has no connection.")
    opened = await ctx.open_destination(connection, export.settings, _QuietReporter())
    session = destination.open_session(opened)
    try:
        standing = await session.read_list_standing(members=True)
        return sum(1 for _ in outsiders(standing.members, seen, plan.asked_already, ctx.seal))
    finally:
        await session.aclose()


def _shown(record: EncodedRecord) -> object:
    """The record's bytes as sent, read back as JSON (or as text when they are not JSON)."""
    try:
        return orjson.loads(record.encoded)
    except orjson.JSONDecodeError:
        return record.encoded.decode(errors="replace")
