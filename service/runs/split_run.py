"""The second half of a changes run's walk, in a helper process on another core.

A ``SEND_CHANGES`` run of a large segment sends few of its records: most of its time is
spent mapping records and finding them unchanged, Python work that one process does on
one core. From ``split_min_profiles`` profiles on, the run walks the first half of the
segment itself while a helper process (:mod:`service.runs.helper`) walks the second
half at the same time, with the same classification (:meth:`SyncPlan.classify`) and
what the run judges by: the ledger index as the run loaded it and the contacts the
destination cannot add.

The helper keeps each read batch sparse (:class:`WalkedBatch`): its profile ids, the
keys and positions of the records it took, and every outcome other than plainly
unchanged. Once its own half is classified, the run takes those batches in order as if
it had classified them (:meth:`WalkedBatch.classified`), so its checkpoints, counts,
samples, ledger entries and uploads are those of one walk. The one thing the helper
cannot know is which of its records a profile of the first half took already ("the
first profile in id order wins"): the run takes their keys into its own key set, and
those it had are duplicates instead.

The helper keeps at most ``MOST_TO_SEND`` records to send (a few MB; a changes run sends
few); past them it stops, and the run walks on from the helper's last batch itself, as
it does when the helper fails. Only a changes run that starts from the first profile
uses one: a resumed run, a mirror (whose memberships may still be read from the
destination while it walks) and a run that sends everything walk alone.
"""

from __future__ import annotations

import asyncio
import pickle
from array import array
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from service.access.ledger_seal import LedgerSeal
from service.domain import Export, Profile, RunError
from service.plugins.api import Destination, EncodedRecord, FieldWarning
from service.runs.heap import FrozenHeap
from service.runs.helper import Emit, PackedTexts
from service.runs.ledger_index import KeySet, LedgerIndex
from service.runs.mapping import RecordMapper, SeenKeys, duplicate
from service.runs.sync import UNCHANGED, Classified, LedgerTriple, SyncPlan, Unchanged
from service.settings import Settings
from service.store import open_store
from service.store.base import LedgerOutcome

MOST_TO_SEND = 40_000
"""Records to send a helper keeps at most before it stops (about one import's worth)."""


def can_split(plan: SyncPlan, destination: Destination, *, resumed: bool) -> bool:
    """Whether a run with ``plan`` may have a helper walk half of its segment."""
    if resumed or plan.removes or not plan.skip_unchanged or not len(plan.index):
        return False
    try:
        pickle.dumps(destination)
    except Exception:  # a destination that cannot travel is walked here
        return False
    return True


@dataclass(slots=True)
class WalkedBatch:
    """One read batch of profiles the helper classified, kept sparse."""

    size: int
    ids: PackedTexts
    """The profile id of each profile of the batch."""
    taken: array[int] = field(default_factory=lambda: array("I"))
    """The positions of the records taken (sent or unchanged)."""
    keys: PackedTexts = field(default_factory=PackedTexts)
    """Their de-duplication keys."""
    outcomes: dict[int, EncodedRecord | RunError | Unchanged] = field(default_factory=dict)
    """Position -> outcome, for every outcome but the plain :data:`UNCHANGED`."""
    entries: dict[int, LedgerTriple] = field(default_factory=dict)
    marked: dict[int, LedgerOutcome] = field(default_factory=dict)
    warnings: dict[int, Sequence[FieldWarning]] = field(default_factory=dict)
    to_send: int = 0

    @classmethod
    def of(cls, profiles: Sequence[Profile], classified: Classified) -> WalkedBatch:
        """``classified`` (with its records taken kept) of the read batch ``profiles``."""
        keyed = classified.keyed
        assert keyed is not None
        batch = cls(len(profiles), PackedTexts(p.id for p in profiles))
        batch.taken.extend(keyed.positions)
        batch.keys.extend(keyed.keys)
        for position, out in enumerate(classified.outcomes):
            if out is not UNCHANGED and out != UNCHANGED:
                batch.outcomes[position] = out
                batch.to_send += isinstance(out, EncodedRecord)
        batch.entries = {p: e for p, e in enumerate(classified.entries) if e is not None}
        batch.marked = dict(classified.marked)
        batch.warnings = {p: w for p, w in enumerate(classified.warnings) if w}
        return batch

    @property
    def last_profile_id(self) -> str:
        return self.ids.slice(self.size - 1, self.size)[0]

    def classified(self, seen: SeenKeys) -> tuple[Classified, list[str]]:
        """The batch as :meth:`SyncPlan.classify` would have returned it to the run, and its
        profile ids, its keys taken into ``seen``: a record whose key the run had taken
        already is a duplicate."""
        size = self.size
        outcomes: list[EncodedRecord | RunError | Unchanged] = [UNCHANGED] * size
        for position, out in self.outcomes.items():
            outcomes[position] = out
        entries: list[LedgerTriple | None] = [None] * size
        for position, entry in self.entries.items():
            entries[position] = entry
        warnings: list[Sequence[FieldWarning]] = [()] * size
        for position, found in self.warnings.items():
            warnings[position] = found
        marked = dict(self.marked)
        ids = self.ids.slice(0, size)
        fresh = seen.add_many(self.keys.slice(0, len(self.keys)))
        for position, new in zip(self.taken, fresh, strict=True):
            if not new:
                outcomes[position] = duplicate(ids[position])
                entries[position] = None
                marked.pop(position, None)
                warnings[position] = ()
        return Classified(outcomes, warnings, entries=entries, marked=marked), ids


@dataclass(frozen=True, slots=True)
class RunPartTask:
    """A helper's part of a run: the profiles after ``after_profile_id``."""

    settings: Settings
    export: Export
    destination: Destination
    run_no: int
    index: LedgerIndex
    cannot_add: KeySet | None
    after_profile_id: str
    expected: int
    batch_size: int
    most_to_send: int


def walk_run_part(emit: Emit, task: RunPartTask) -> bool:
    """The helper process's side (:func:`~service.runs.helper.from_helper_process`):
    sends each :class:`WalkedBatch` as it is made, in profile-id order; returns whether
    it walked every profile after the task's (else it stopped at ``most_to_send``, and
    the run walks on after its last batch)."""
    return asyncio.run(_walk_run_part(emit, task))


async def _walk_run_part(emit: Emit, task: RunPartTask) -> bool:
    store = await open_store(task.settings)
    try:
        plan = SyncPlan(
            store=store,
            seal=LedgerSeal(task.settings.encryption_keys()),
            export=task.export,
            run_no=task.run_no,
            skip_unchanged=True,
            removes=False,
            index=task.index,
            cannot_add=task.cannot_add,
        )
        envelope = task.destination.batch_envelope_size(task.export.settings)
        to_send = 0
        with (
            FrozenHeap().held(),
            RecordMapper(
                task.destination,
                task.export.field_mapping,
                envelope_size=envelope,
                expected=task.expected,
            ) as mapper,
        ):
            members = store.iter_segment_members(
                task.export.segment_ids,
                after_profile_id=task.after_profile_id,
                batch_size=task.batch_size,
            )
            async for profiles in read_ahead(members):
                classified = await plan.classify(mapper, profiles, keep_keyed=True)
                walked = WalkedBatch.of(profiles, classified)
                emit(walked)
                to_send += walked.to_send
                if to_send >= task.most_to_send:
                    return False
        return True
    finally:
        await store.close()


async def read_ahead(
    batches: AsyncIterator[list[Profile]], depth: int = 2
) -> AsyncIterator[list[Profile]]:
    """``batches``, read up to ``depth`` ahead of their use (reading overlaps mapping)."""
    ahead: asyncio.Queue[list[Profile] | None] = asyncio.Queue(depth)

    async def read() -> None:
        async for batch in batches:
            await ahead.put(batch)
        await ahead.put(None)

    reader = asyncio.create_task(read())
    try:
        while (batch := await ahead.get()) is not None:
            yield batch
        await reader
    finally:
        reader.cancel()
