"""``previewExport``: what a run of an export would do now, sending nothing.

It walks the segment exactly as a run does (the same mapping, de-duplication and
ledger lookups, :class:`~service.runs.sync.SyncPlan`), counts instead of uploading,
and for a mirror counts the leavers the removal phase would ask for. A reset the
next run would make (another list, connection or mapping) is taken into account
without being made: the ledger is only read.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import orjson

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
from service.runs.mapping import RecordMapper, SeenKeys
from service.runs.removals import leavers
from service.runs.sync import SyncPlan, Unchanged, ledger_basis, ledger_reset, reset_note
from service.runs.whole_list import confirmation, outsiders
from service.store.base import LedgerReset

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
    list's members from the destination, and with the confirmation such a run needs."""
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
    sends_changes = export.sync_mode in (SyncMode.SEND_CHANGES, SyncMode.MIRROR)
    plan = SyncPlan(
        store=store,
        seal=ctx.seal,
        export=export,
        run_no=NO_RUN,
        skip_unchanged=sends_changes,
        removes=export.sync_mode is SyncMode.MIRROR,
        pending_reset=reset,
    )
    if reset is not LedgerReset.CLEAR:
        await plan.load_index()
    preview = SyncPreview()
    if sends_changes and why is not None:
        preview.note = reset_note(why)
    envelope = destination.batch_envelope_size(export.settings)
    batches: asyncio.Queue[list[Profile] | None] = asyncio.Queue(2)

    async def read() -> None:
        # Reading ahead (as a run's reader does), so the next batch is there when wanted.
        async for profiles in store.iter_segment_members(
            export.segment_ids, batch_size=ctx.settings.run_read_batch_size
        ):
            await batches.put(profiles)
        await batches.put(None)

    reader = asyncio.create_task(read())
    try:
        expected = await store.count_segment_members(export.segment_ids)
        # A walk streams the segment as a run does, with a run's collector settings.
        with (
            ctx.heap.held(),
            RecordMapper(
                destination, export.field_mapping, envelope_size=envelope, expected=expected
            ) as mapper,
        ):
            await _walk(plan, mapper, batches, preview)
            if plan.removes and reset is not LedgerReset.CLEAR:
                async for keys, _ in leavers(store, ctx.seal, export.id, mapper.seen, NO_RUN):
                    preview.to_remove += len(keys)
            if whole_list:
                found = await _outsiders(ctx, export, destination, plan, mapper.seen)
                preview.outside_export = found
                preview.to_remove += found
                preview.whole_list_confirmation = confirmation(ctx.seal, export.id, found)
        await reader
    finally:
        reader.cancel()
    return preview


async def _walk(
    plan: SyncPlan,
    mapper: RecordMapper,
    batches: asyncio.Queue[list[Profile] | None],
    preview: SyncPreview,
) -> None:
    """Classify every batch as the run would, counting instead of sending."""
    while (profiles := await batches.get()) is not None:
        classified = await plan.classify(mapper, profiles)
        preview.to_add += classified.added
        preview.to_update += classified.changed - classified.added + classified.resent
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
