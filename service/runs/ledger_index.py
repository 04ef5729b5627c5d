"""The export's ledger as a run finds it, held compactly in memory for its lookups.

A run asks the ledger about every record it maps. Asking the store per read batch
means thousands of random reads of the ledger's B-tree per batch (a million entries
are ~70 MB on disk, far beyond SQLite's page cache); reading the ledger once, in key
order, into three flat arrays costs 17 bytes per entry (17 MB for a million) and makes
each lookup a binary search. The run's own writes never need to be seen: a key is
taken once per run (de-duplication), so the index as loaded stays right for the run.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable

from service.store.base import LedgerOutcome, Store

LOAD_PAGE = 10_000
"""Ledger entries per query while loading."""

_OUTCOMES = tuple(LedgerOutcome)


class LedgerIndex:
    """Key id -> (fingerprint, outcome) of every entry, in sorted arrays."""

    def __init__(self) -> None:
        self._ids = array("q")
        self._fingerprints = array("q")
        self._outcomes = bytearray()

    @classmethod
    async def load(cls, store: Store, export_id: str) -> LedgerIndex:
        index = cls()
        ids, fingerprints, outcomes = index._ids, index._fingerprints, index._outcomes
        async for page in store.iter_ledger_digest(export_id, batch_size=LOAD_PAGE):
            # Key-id order: the arrays come out sorted. Only the three columns, no sealed
            # keys, and no object per entry.
            ids.extend(page.key_ids)
            fingerprints.extend(page.fingerprints)
            outcomes.extend(page.outcomes)
        return index

    def __len__(self) -> int:
        return len(self._ids)

    def get(self, key_id: int) -> tuple[int, LedgerOutcome] | None:
        """The entry's fingerprint and outcome, or None when the ledger has no such key."""
        ids = self._ids
        position = bisect_left(ids, key_id)
        if position == len(ids) or ids[position] != key_id:
            return None
        return self._fingerprints[position], _OUTCOMES[self._outcomes[position]]


class KeySet:
    """Key ids of a set of de-duplication keys (the destination's list members, or the
    contacts it cannot add), as one sorted array: 8 bytes a key, a million in 8 MB."""

    def __init__(self, key_ids: Iterable[int] = ()) -> None:
        self._ids = array("q", sorted(key_ids))

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, key_id: object) -> bool:
        if not isinstance(key_id, int):
            return False
        ids = self._ids
        position = bisect_left(ids, key_id)
        return position < len(ids) and ids[position] == key_id
