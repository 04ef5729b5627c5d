"""Sync state during a run: the export's ledger decides what is sent, and learns what was.

Every run keeps the ledger (whatever the export's sync mode), so that switching to
``SEND_CHANGES`` or ``MIRROR`` later starts from what the destination really holds.
A run begins by comparing what the ledger was built for (its *basis*: the connection,
the destination's export settings such as the list, the field mapping) with the
export now: another list or account clears it, another mapping forgets every
fingerprint (the contacts are still on the list, but their records would differ); the
run then sends everything and says why.

For each read batch of profiles, :meth:`SyncPlan.classify` maps them (de-duplication
included) and looks their keys up in the ledger as the run found it
(:class:`~service.runs.ledger_index.LedgerIndex`, held in memory): a record whose
fingerprint equals the ledger's is *unchanged* and not sent (``SEND_CHANGES``,
``MIRROR``, unless the run is a full resync). The fingerprint is 64 bits of BLAKE2b
over the record's encoded bytes, exactly as they would be sent.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from service.access.ledger_seal import LedgerSeal
from service.domain import Export, Profile, RunError, SyncMode
from service.plugins.api import EncodedRecord, FieldWarning, ListStanding, RecordRejection
from service.runs.ledger_index import KeySet, LedgerIndex
from service.runs.mapping import RecordMapper
from service.store.base import LedgerChanges, LedgerOutcome, LedgerReset, LedgerState, Store

YIELD_EVERY = 256
"""Profiles mapped between two yields to the event loop (a few milliseconds of work)."""


_KEPT = frozenset({LedgerOutcome.SENT, LedgerOutcome.PRE_EXISTING})
"""Outcomes an unchanged record keeps when a run sends it again (SEND_ALL, a resync)."""
_OURS = frozenset({LedgerOutcome.SENT, LedgerOutcome.REMOVAL_FAILED})
"""Outcomes of memberships the export created."""
_MARKED = frozenset({LedgerOutcome.PRE_EXISTING, LedgerOutcome.CANNOT_ADD})
"""Outcomes written after the upsert of a sent entry (which records SENT)."""


def fingerprint(encoded: bytes) -> int:
    """A signed 64-bit fingerprint of a record as sent; never 0 (0 means "unknown")."""
    value = int.from_bytes(hashlib.blake2b(encoded, digest_size=8).digest(), signed=True)
    return value or 1


def ledger_basis(export: Export, seal: LedgerSeal) -> dict[str, Any]:
    """What an export's ledger entries are true for."""
    return {
        "key_scope": seal.key_scope,
        "connection_id": export.connection_id,
        "destination_type": export.destination_type,
        "settings": dict(export.settings),
        "mapping": [[m.source, m.target] for m in export.field_mapping],
    }


def ledger_reset(
    previous: LedgerState | None, basis: Mapping[str, Any]
) -> tuple[LedgerReset, str | None]:
    """How a run must reset the ledger it finds, and why (None: it need not)."""
    if previous is None or not previous.basis:
        return LedgerReset.KEEP, None
    old = previous.basis
    if old.get("key_scope") != basis["key_scope"]:
        return LedgerReset.CLEAR, "the service's encryption key changed since the last run"
    if (
        old.get("connection_id") != basis["connection_id"]
        or old.get("destination_type") != basis["destination_type"]
    ):
        why = "the export's connection changed since its last run"
        return LedgerReset.CLEAR, why
    if old.get("settings") != basis["settings"]:
        why = "the export's destination settings (such as its list) changed since its last run"
        return LedgerReset.CLEAR, why
    if old.get("mapping") != basis["mapping"]:
        return (
            LedgerReset.FORGET_FINGERPRINTS,
            "the export's field mapping changed since its last run",
        )
    return LedgerReset.KEEP, None


def reset_note(why: str) -> str:
    return f"Every record was sent: {why}, so what the destination held was not known."


@dataclass(frozen=True, slots=True)
class Unchanged:
    """A profile whose record the destination already holds as it is."""

    cannot_add: bool = False
    """The destination keeps the contact off its lists (counted ``cannotAddToList``)."""
    mark: int | None = None
    """The key id of a ledger entry to mark CANNOT_ADD (the destination says so now)."""


UNCHANGED = Unchanged()
"""The usual unchanged record (one object for them all)."""

LedgerTriple = tuple[int, bytes, int]
"""(key id, sealed key, fingerprint) of an entry a record's confirmation writes."""


@dataclass(slots=True)
class Classified:
    """One read batch, decided: per profile a record to send, a skip, or unchanged."""

    outcomes: list[EncodedRecord | RunError | Unchanged]
    warnings: list[Sequence[FieldWarning]]
    """Each profile's field warnings (those of a record sent count; see runs.warnings)."""
    entries: list[LedgerTriple | None] = field(default_factory=list)
    """By position, as ``outcomes``: the ledger entry of each record to send whose entry
    changes once it is confirmed (new, or changed); None for the others."""
    marked: dict[int, LedgerOutcome] = field(default_factory=dict)
    """Position -> outcome of the entries of ``entries`` that are written as other than
    SENT once confirmed (PRE_EXISTING, CANNOT_ADD): few, so kept apart."""
    added: int = 0
    """Records to send that the ledger does not hold at all."""
    resent: int = 0
    """Records sent although the ledger holds them as they are (SEND_ALL, a full resync):
    their entries stay as they are, so a run over unchanged contacts writes nothing."""
    keyed: Keyed | None = None
    """The records taken (sent or unchanged), column by column, when asked for."""

    @property
    def changed(self) -> int:
        """Records to send whose ledger entries change."""
        return len(self.entries) - self.entries.count(None)


@dataclass(slots=True)
class Keyed:
    """A batch's records taken, column by column: their positions in the batch, their
    de-duplication keys, key ids and fingerprints."""

    positions: list[int]
    keys: list[str]
    key_ids: list[int]
    values: list[int]

    def __iter__(self) -> Iterator[tuple[int, str, int, int]]:
        return zip(self.positions, self.keys, self.key_ids, self.values, strict=True)


@dataclass(slots=True)
class SyncPlan:
    """How one run uses the export's ledger."""

    store: Store
    seal: LedgerSeal
    export: Export
    run_no: int
    skip_unchanged: bool
    """SEND_CHANGES or MIRROR, not a full resync, and the ledger was not just cleared."""
    removes: bool
    """MIRROR: after sending, take leavers off the list."""
    note: str | None = None
    """Why every record is sent although the mode sends changes (the ledger was reset)."""
    pending_reset: LedgerReset = LedgerReset.KEEP
    """A preview's view of a reset the next run would make (a run has made it already)."""
    index: LedgerIndex = field(default_factory=LedgerIndex)
    """The ledger as the run found it (empty when it is to be cleared)."""
    standing: Callable[[bool, bool], Awaitable[ListStanding]] | None = None
    """Reads the list's standing at the destination (``members`` asked or not, the
    contacts it cannot add asked or not), when the destination can
    (``Destination.can_read_list_standing``)."""
    members: KeySet | None = None
    """The list's members before this run first sent a record the ledger did not hold
    (None: not read yet)."""
    cannot_add: KeySet | None = None
    """Contacts the destination cannot add to the list (None: not known)."""
    whole_list_cap: int | None = None
    """A whole-list mirror run (service.runs.whole_list): how many members outside the
    export its preview showed (None: an ordinary run)."""

    async def load_index(self) -> None:
        """Read the ledger as the run finds it into :attr:`index`."""
        self.index = await LedgerIndex.load(self.store, self.export.id)

    def asked_already(self, key_id: int) -> bool:
        """Whether the ordinary removal phase handles ``key_id`` (a ledger entry the export
        created, as the run found the ledger)."""
        entry = self.index.get(key_id)
        return entry is not None and entry[1] in _OURS

    async def read_standing(self, *, members: bool) -> None:
        """Learn the list's standing from the destination (nothing when it cannot tell)."""
        if self.standing is None:
            return
        kept = await self._kept_members() if members else None
        if kept is not None:  # a resumed run: the members as its first attempt found them
            self.members = kept
            members = False
            if not self.skip_unchanged:
                return
        # Only a run that skips unchanged records keeps its unsubscribed contacts from being
        # sent again; a run that sends everything has no use for them (and saves the reads).
        standing = await self.standing(members, self.skip_unchanged)
        key_id = self.seal.key_id
        if self.skip_unchanged:
            self.cannot_add = KeySet(key_id(key) for key in standing.cannot_add)
        if members:
            self.members = KeySet(key_id(key) for key in standing.members)
            if self.run_no > 0:
                # Kept before any record is judged by it (so before one is sent): a resume
                # of this run must not take what its own earlier sends put on the list for
                # memberships that were there before.
                await self.store.keep_list_standing(
                    self.export.id, self.run_no, self.members.key_ids()
                )

    async def _kept_members(self) -> KeySet | None:
        """The members this run found before (it is resumed), as it kept them."""
        if self.run_no <= 0:
            return None
        kept = await self.store.list_standing(self.export.id, self.run_no)
        return None if kept is None else KeySet(kept)

    def _outcome(self, identifier: int, entry: tuple[int, LedgerOutcome] | None) -> LedgerOutcome:
        """The ledger outcome of a record about to be sent."""
        if self.cannot_add is not None and identifier in self.cannot_add:
            return LedgerOutcome.CANNOT_ADD
        if entry is not None and entry[1] is LedgerOutcome.PRE_EXISTING:
            return LedgerOutcome.PRE_EXISTING
        new = entry is None or entry[1] is LedgerOutcome.CANNOT_ADD
        if new and self.members is not None and identifier in self.members:
            return LedgerOutcome.PRE_EXISTING
        return LedgerOutcome.SENT

    async def classify(
        self, mapper: RecordMapper, profiles: Sequence[Profile], *, keep_keyed: bool = False
    ) -> Classified:
        """Map ``profiles`` (taking their keys for de-duplication) and decide each one;
        ``keep_keyed``: keep the records taken on the result (:attr:`Classified.keyed`).

        The per-record work is the run's hottest loop after the mapping itself: key ids
        and fingerprints are made in one pass over the batch's records, and a ledger with
        no entries (a first run) takes a path with no lookups."""
        outcomes: list[EncodedRecord | RunError | Unchanged] = []
        warnings: list[Sequence[FieldWarning]] = []
        positions: list[int] = []
        keys: list[str] = []
        values: list[int] = []
        digest = hashlib.blake2b
        from_bytes = int.from_bytes
        for start in range(0, len(profiles), YIELD_EVERY):
            if start:
                # Mapping is CPU work on the event loop; let admitted requests go out.
                await asyncio.sleep(0)
            for out, found, key in mapper.map_many_keyed(profiles[start : start + YIELD_EVERY]):
                if key is not None:  # a record to send (skips have no key)
                    assert isinstance(out, EncodedRecord)
                    positions.append(len(outcomes))
                    keys.append(key)
                    # fingerprint(), inlined: this runs once per record.
                    value = digest(out.encoded, digest_size=8).digest()
                    values.append(from_bytes(value, signed=True) or 1)
                outcomes.append(out)
                warnings.append(found)
        classified = Classified(outcomes, warnings, entries=[None] * len(outcomes))
        keyed = Keyed(positions, keys, self.seal.key_ids(keys), values)
        if keep_keyed:
            classified.keyed = keyed
        if len(self.index) == 0:
            await self._all_new(classified, keyed)
        else:
            await self._decide(classified, keyed)
        return classified

    async def _all_new(self, classified: Classified, keyed: Keyed) -> None:
        """:meth:`_decide` for a ledger with no entries: every record is new."""
        if keyed.keys and self.removes and self.members is None:
            await self._first_new()
        entries = classified.entries
        plain = self.cannot_add is None and self.members is None
        sealed = self.seal.seal_many(keyed.keys, keyed.key_ids)
        for (position, _, identifier, value), seal in zip(keyed, sealed, strict=True):
            entries[position] = (identifier, seal, value)
            if not plain:
                outcome = self._outcome(identifier, None)
                if outcome is not LedgerOutcome.SENT:
                    classified.marked[position] = outcome
        classified.added = len(keyed.keys)

    async def _decide(self, classified: Classified, keyed: Keyed) -> None:
        """Decide each record to send against the ledger as the run found it."""
        outcomes, entries = classified.outcomes, classified.entries
        forgotten = self.pending_reset is LedgerReset.FORGET_FINGERPRINTS
        find = self.index.get
        cannot_add = self.cannot_add
        skip_unchanged = self.skip_unchanged
        for position, key, identifier, value in keyed:
            entry = find(identifier)
            if entry is not None:
                unchanged = entry[0] == value and not forgotten
                kind = entry[1]
                if unchanged and skip_unchanged and cannot_add is None:
                    if kind is not LedgerOutcome.CANNOT_ADD:
                        outcomes[position] = UNCHANGED
                        continue
                elif unchanged and kind in _KEPT and cannot_add is None and not skip_unchanged:
                    classified.resent += 1
                    continue
                blocked = cannot_add is not None and identifier in cannot_add
                if unchanged and kind is LedgerOutcome.CANNOT_ADD:
                    # Known as unsendable: retried only once the destination no longer says so.
                    unchanged = blocked or cannot_add is None
                    blocked = unchanged
                if unchanged and skip_unchanged:
                    marks = blocked and kind is not LedgerOutcome.CANNOT_ADD
                    outcomes[position] = (
                        Unchanged(blocked, identifier if marks else None) if blocked else UNCHANGED
                    )
                    continue
                if unchanged and kind in _KEPT:
                    classified.resent += 1
                    continue
            first_new = entry is None or entry[1] is LedgerOutcome.CANNOT_ADD
            if first_new and self.removes and self.members is None:
                await self._first_new()
            if entry is None:
                classified.added += 1
            # Sealing is deterministic (the nonce is the key id): the same bytes an existing
            # entry holds, so changed entries need not be read back.
            entries[position] = (identifier, self.seal.seal(key, identifier), value)
            outcome = self._outcome(identifier, entry)
            if outcome is not LedgerOutcome.SENT:
                classified.marked[position] = outcome

    async def _first_new(self) -> None:
        """The run's first record that the list may hold already: learn, once, which
        contacts the list has before this run adds any."""
        await self.read_standing(members=True)
        if self.members is None:
            self.members = KeySet()

    def confirmed(
        self,
        entries: list[LedgerTriple],
        profile_ids: Sequence[str],
        marked: Sequence[tuple[str, int, LedgerOutcome]],
        rejected: Sequence[RecordRejection],
        *,
        batch_refused: bool,
    ) -> LedgerChanges | None:
        """The ledger changes of a batch the destination answered: each entry of the
        records it took, i.e. all of ``entries`` (with ``profile_ids``, the profile of
        each) but those it refused, and the ``marked`` outcomes (profile id, key id,
        outcome) of those."""
        if batch_refused or not entries:
            return None
        if rejected:
            refused = {r.profile_id for r in rejected}
            entries = [e for e, p in zip(entries, profile_ids, strict=True) if p not in refused]
            marked = [m for m in marked if m[0] not in refused]
            if not entries:
                return None
        marks = [(key_id, outcome) for _, key_id, outcome in marked]
        return LedgerChanges(self.export.id, self.run_no, sent=entries, marked=marks)

    def forget(self) -> LedgerChanges:
        """The changes after the destination failed to process part of this run."""
        return LedgerChanges(self.export.id, self.run_no, forget_run=True)


async def start_sync(
    store: Store, seal: LedgerSeal, export: Export, run_id: str, *, full_resync: bool
) -> SyncPlan:
    """Begin (or resume) run ``run_id`` on the export's ledger. The plan's index is
    empty until :meth:`SyncPlan.load_index` (which the run overlaps with its first
    questions to the destination)."""
    basis = ledger_basis(export, seal)
    previous = await store.ledger_state(export.id)
    reset, why = ledger_reset(previous, basis)
    resumed = previous is not None and previous.run_id == run_id
    state = await store.start_ledger(export.id, run_id, basis, reset)
    sends_changes = export.sync_mode in (SyncMode.SEND_CHANGES, SyncMode.MIRROR)
    cleared = not resumed and reset is not LedgerReset.KEEP
    note = reset_note(why) if cleared and why is not None and sends_changes else None
    return SyncPlan(
        store=store,
        seal=seal,
        export=export,
        run_no=state.run_no,
        skip_unchanged=sends_changes and not full_resync,
        removes=export.sync_mode is SyncMode.MIRROR,
        note=note,
    )
