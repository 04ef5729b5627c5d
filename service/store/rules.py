"""Rules both store adapters follow, written once.

Each adapter says these in its own query language (SQL, MongoDB filters and
updates); what the rule *is* lives here: which runs hold an export's one
active-run slot, how names are folded for search, how segment members are
paged, what a cancelled queued run says, how long expired OAuth states stay.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from service.domain import ACTIVE_RUN_STATUSES, ExportRunStatus, Profile
from service.store._paging import unique_in_order
from service.store.base import ActiveRunExists, DuplicateRun, StoreError

T = TypeVar("T")

# -- sizes --------------------------------------------------------------------


def require_at_least_one(name: str, value: int) -> None:
    """Refuse a batch size (or timeout) below one, naming the setting."""
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")


def require_position(position: int) -> None:
    """Refuse a position below 0 (positions count from 0)."""
    if position < 0:
        raise ValueError(f"position must be at least 0, got {position}")


def in_batches(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """``items`` in consecutive slices of at most ``size`` (the store's write batch size)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


# -- search -------------------------------------------------------------------


def folded(text: str) -> str:
    """``text`` as name search compares it: case-folded (so "STRASSE" finds "Straße").

    Stored next to each searchable name (``name_folded``, ``display_name_folded``)
    and applied to the search text, so a search is a plain substring test.
    """
    return text.casefold()


# -- segment members ----------------------------------------------------------


class KeysetSegmentMembers(ABC):
    """The keyset loop of :meth:`Store.iter_segment_members`, over an adapter's batch read.

    Each batch is one bounded read that starts after the last profile id of the
    previous batch, so nothing stays open between batches (however slowly the
    destination consumes them) and a resumed run starts after its checkpoint;
    a short batch is the last one.
    """

    async def iter_segment_members(
        self,
        segment_ids: Sequence[str],
        *,
        after_profile_id: str | None = None,
        batch_size: int = 5000,
    ) -> AsyncIterator[list[Profile]]:
        require_at_least_one("batch_size", batch_size)
        ids = unique_in_order(segment_ids)
        if not ids:
            return
        after = after_profile_id
        while True:
            batch = await self._read_member_batch(ids, after, batch_size)
            if batch:
                yield batch
            if len(batch) < batch_size:
                return
            after = batch[-1].id

    @abstractmethod
    async def _read_member_batch(
        self, segment_ids: list[str], after: str | None, limit: int
    ) -> list[Profile]:
        """Up to ``limit`` profiles that are in any of ``segment_ids``, each once, in
        profile-id order, starting after the id ``after`` (from the first when None)."""


# -- segments -----------------------------------------------------------------


def duplicate_segment_name(name: str) -> ValueError:
    """The error for a segment saved under a name another segment has."""
    return ValueError(f"segment name {name!r} is already used by another segment")


# -- runs ---------------------------------------------------------------------

ACTIVE_SLOT_FIELD = "active_export_id"
"""The stored field that holds a run's claim on its export's one active-run slot.

A unique index over the runs where it is set allows one active run per export.
"""
DEDUPE_KEY_FIELD = "dedupe_key"
"""The stored field whose unique index allows one run per dedupe key."""

CANCELLED_BEFORE_START = "Cancelled before it started."
"""The message of a run cancelled while it was still QUEUED."""


def active_export_id(status: str | ExportRunStatus, export_id: str) -> str | None:
    """A run's active-run slot: its export id while QUEUED or RUNNING, else None (free)."""
    return export_id if ExportRunStatus(status) in ACTIVE_RUN_STATUSES else None


def changes_move_active_slot(changes: Mapping[str, Any]) -> bool:
    """Whether run changes (document fields) can move the active-run slot."""
    return "status" in changes or "export_id" in changes


def active_slot_after(changes: Mapping[str, Any], current: Mapping[str, Any]) -> str | None:
    """The slot once ``changes`` are applied to a run now holding ``current``'s
    ``export_id`` and ``status`` (both document fields)."""
    export_id = changes.get("export_id") or current["export_id"]
    status = changes.get("status") or current["status"]
    return active_export_id(str(status), str(export_id))


def cancel_queued_run(now: datetime) -> dict[str, Any]:
    """The fields a QUEUED run takes when cancelled: done at once, its slot freed.

    A RUNNING run only gets ``cancel_requested``; a finished one is left alone.
    """
    return {
        "status": ExportRunStatus.CANCELLED.value,
        "cancel_requested": True,
        "finished_at": now,
        "message": CANCELLED_BEFORE_START,
        ACTIVE_SLOT_FIELD: None,
    }


def run_index_refusal(
    field: str, *, export_id: str, dedupe_key: str | None, active_run_id: str | None
) -> StoreError | None:
    """The store error a unique-index refusal on runs means, from the refused ``field``.

    None when the refusal is not one of these rules, or when the active slot is
    free again (``active_run_id`` None: the active run finished meanwhile).
    """
    if field == DEDUPE_KEY_FIELD and dedupe_key is not None:
        return DuplicateRun(dedupe_key)
    if field == ACTIVE_SLOT_FIELD and active_run_id is not None:
        return ActiveRunExists(export_id, active_run_id)
    return None


# -- small state --------------------------------------------------------------

OAUTH_STATE_GRACE = timedelta(days=1)
"""How long an expired OAuth state is kept: a late callback is told "expired", not "unknown"."""

REFRESH_SCHEDULE_KEY = "refresh_schedule"
"""The key the one refresh schedule is stored under."""
