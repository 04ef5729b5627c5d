"""The export's ledger as a run finds it, held compactly in memory for its lookups.

A run asks the ledger about every record it maps. Asking the store per read batch
means thousands of random reads of the ledger's B-tree per batch (a million entries
are ~70 MB on disk, far beyond SQLite's page cache); reading the ledger once, in key
order, into three flat arrays costs 17 bytes per entry, and a table of positions (open
addressing on the key id's low bits, which are uniform: key ids are keyed hashes) makes
each lookup one or two probes: 25 bytes per entry in all, 25 MB for a million. A binary
search over the sorted ids had cost 2 microseconds a lookup, 2 s of a 1M preview.
The run's own writes never need to be seen: a key is taken once per run
(de-duplication), so the index as loaded stays right for the run.
"""

from __future__ import annotations

import pickle
from array import array
from bisect import bisect_left
from collections.abc import Iterable
from typing import Any, SupportsIndex

from service.store.base import LedgerOutcome, Store

LOAD_PAGE = 10_000
"""Ledger entries per query while loading."""

_OUTCOMES = tuple(LedgerOutcome)


class LedgerIndex:
    """Key id -> (fingerprint, outcome) of every entry, in sorted arrays."""

    def __init__(self) -> None:
        self._ids: array[int] | memoryview = array("q")
        self._fingerprints: array[int] | memoryview = array("q")
        self._outcomes: bytearray | memoryview = bytearray()
        """The columns: arrays as loaded, or views of the buffers they came in."""
        self._positions = array("I", [0])
        """Slot -> 1 + the entry's position in the arrays (0: an empty slot)."""
        self._mask = 0

    @classmethod
    async def load(cls, store: Store, export_id: str) -> LedgerIndex:
        index = cls()
        ids, fingerprints, outcomes = array("q"), array("q"), bytearray()
        index._ids, index._fingerprints, index._outcomes = ids, fingerprints, outcomes
        async for page in store.iter_ledger_digest(export_id, batch_size=LOAD_PAGE):
            # Key-id order: the arrays come out sorted. Only the three columns, no sealed
            # keys, and no object per entry.
            ids.extend(page.key_ids)
            fingerprints.extend(page.fingerprints)
            outcomes.extend(page.outcomes)
        index._place()
        return index

    def _place(self) -> None:
        """Build the table of positions: a power of two of slots, at most half used."""
        ids = self._ids
        size = 1 << max(4, (2 * len(ids)).bit_length())
        mask = size - 1
        positions = array("I", [0]) * size
        for position, key_id in enumerate(ids, start=1):
            slot = key_id & mask
            while positions[slot]:
                slot = (slot + 1) & mask
            positions[slot] = position
        self._positions, self._mask = positions, mask

    def __reduce_ex__(self, protocol: SupportsIndex) -> tuple[Any, ...]:
        # What travels to a helper process (service.runs.split_run): the three columns;
        # the table of positions (a third of the size) is built again there. From
        # protocol 5 on, as buffers that a pickler can send out of band (not copied).
        columns = (self._ids, self._fingerprints, self._outcomes)
        if int(protocol) >= 5:
            return _from_columns, tuple(pickle.PickleBuffer(column) for column in columns)
        return _from_columns, tuple(bytes(column) for column in columns)

    def __len__(self) -> int:
        return len(self._ids)

    def get(self, key_id: int) -> tuple[int, LedgerOutcome] | None:
        """The entry's fingerprint and outcome, or None when the ledger has no such key."""
        positions, ids, mask = self._positions, self._ids, self._mask
        slot = key_id & mask
        while position := positions[slot]:
            if ids[position - 1] == key_id:
                return self._fingerprints[position - 1], _OUTCOMES[self._outcomes[position - 1]]
            slot = (slot + 1) & mask
        return None


_Column = bytes | bytearray | memoryview
"""A column as it is unpickled: the buffer it travelled in."""


def _from_columns(ids: _Column, fingerprints: _Column, outcomes: _Column) -> LedgerIndex:
    """A pickled :class:`LedgerIndex` again, on the buffers it came in (no copy)."""
    index = LedgerIndex()
    index._ids = memoryview(ids).cast("B").cast("q")
    index._fingerprints = memoryview(fingerprints).cast("B").cast("q")
    index._outcomes = memoryview(outcomes).cast("B")
    index._place()
    return index


class KeySet:
    """Key ids of a set of de-duplication keys (the destination's list members, or the
    contacts it cannot add), as one sorted array: 8 bytes a key, a million in 8 MB."""

    def __init__(self, key_ids: Iterable[int] = ()) -> None:
        self._ids = array("q", sorted(key_ids))

    def __len__(self) -> int:
        return len(self._ids)

    def key_ids(self) -> array[int]:
        """The key ids, in order (the set's own array: do not change it)."""
        return self._ids

    def __contains__(self, key_id: object) -> bool:
        if not isinstance(key_id, int):
            return False
        ids = self._ids
        position = bisect_left(ids, key_id)
        return position < len(ids) and ids[position] == key_id
