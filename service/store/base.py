"""The repository contract every store adapter fulfils (SQLite, MongoDB).

One contract test suite (``tests/store/``) runs against each adapter. Methods
speak in :mod:`service.domain` dataclasses; adapters never decrypt credentials
and never know about GraphQL.

Pagination is by cursor in the database: a page is asked for with ``first``
and ``after`` (the id of the last item already seen), and the adapter fetches
``first + 1`` rows ordered by id to know whether there is a next page. Ids are
time-ordered (see :func:`service.domain.new_id`), so id order is creation order.
Runs are listed newest first (id descending).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

from service.domain import (
    Connection,
    ConnectionUsableBy,
    Export,
    ExportRun,
    ExportRunStatus,
    OAuthState,
    Profile,
    RefreshSchedule,
    RunCounts,
    RunError,
    Segment,
)

T = TypeVar("T")


class StoreError(Exception):
    """Base class of the errors a store raises on purpose."""


class NotFound(StoreError):
    def __init__(self, kind: str, id: str) -> None:
        super().__init__(f"{kind} {id!r} does not exist")
        self.kind = kind
        self.id = id


class ActiveRunExists(StoreError):
    """An export may have one active (QUEUED or RUNNING) run at a time."""

    def __init__(self, export_id: str, run_id: str) -> None:
        super().__init__(f"export {export_id!r} already has an active run {run_id!r}")
        self.export_id = export_id
        self.run_id = run_id


class DuplicateRun(StoreError):
    """A run with the same ``dedupe_key`` exists (a scheduled run was already made)."""

    def __init__(self, dedupe_key: str) -> None:
        super().__init__(f"a run for {dedupe_key!r} already exists")
        self.dedupe_key = dedupe_key


@dataclass(slots=True)
class Page(Generic[T]):
    items: list[T]
    has_next_page: bool
    total_count: int
    has_previous_page: bool = False


# -- the export ledger -------------------------------------------------------
#
# Per export, per record the destination took: its de-duplication key (as a keyed 64-bit
# hash, ``key_id``, and sealed: encrypted, so that no e-mail address is readable outside
# the profiles), a 64-bit fingerprint of the record as sent, its outcome and the run (an
# ordinal per export) that wrote it. Nothing else: a million entries are tens of MB, not
# hundreds. Entries change only through RunProgress.ledger, in the same write as the
# checkpoint that records what the destination acknowledged, so a resumed run sees
# exactly what was confirmed.


class LedgerOutcome(IntEnum):
    SENT = 0
    """The destination took the record (it is on the export's list)."""
    REMOVAL_FAILED = 1
    """The contact left the export's segments and the destination refused to take it off
    the list; the entry stays, so a later run asks again."""
    PRE_EXISTING = 2
    """The destination took the record, but the contact was on the list before this export
    first sent it: the membership is not this export's, a mirror leaves it."""
    CANNOT_ADD = 3
    """The destination keeps the contact off its lists (it unsubscribed): the record is not
    sent again while it is unchanged, and runs count it ``cannotAddToList``."""


class LedgerEntry(NamedTuple):
    """One entry (a named tuple: a run reads a million of them, and tuples are cheap)."""

    key_id: int
    """Signed 64-bit keyed hash of the de-duplication key (service.access.ledger_seal)."""
    sealed: bytes
    """The de-duplication key, encrypted (what a removal needs to name the contact)."""
    fingerprint: int
    """Signed 64-bit; 0 means unknown (the record is sent again whatever it holds)."""
    outcome: LedgerOutcome
    run_no: int


class LedgerDigest(NamedTuple):
    """A page of a ledger without its sealed keys, as columns: what a run's in-memory
    index holds (three lists, no object per entry)."""

    key_ids: list[int]
    """In key-id order."""
    fingerprints: list[int]
    outcomes: list[int]
    """:class:`LedgerOutcome` values."""


@dataclass(frozen=True, slots=True)
class LedgerState:
    """What an export's ledger was built for, and the run that last started on it."""

    basis: dict[str, Any]
    """What entries are true for (connection, list, mapping); see service.runs.sync."""
    run_id: str | None
    run_no: int


@dataclass(slots=True)
class LedgerChanges:
    """Changes to one export's ledger, applied with a checkpoint (RunProgress.ledger)."""

    export_id: str
    run_no: int
    sent: list[tuple[int, bytes, int]] = field(default_factory=list)
    """(key id, sealed key, fingerprint) of records the destination took: upserted as SENT
    by ``run_no``."""
    removed: list[int] = field(default_factory=list)
    """Key ids now off the list: their entries are deleted."""
    removal_failed: list[int] = field(default_factory=list)
    """Key ids whose removal failed: marked REMOVAL_FAILED by ``run_no``."""
    marked: list[tuple[int, LedgerOutcome]] = field(default_factory=list)
    """(key id, outcome) of existing entries (those of ``sent`` included, applied after them)
    whose outcome becomes PRE_EXISTING or CANNOT_ADD; the run ordinal is unchanged."""
    forget_run: bool = False
    """The destination failed to process something ``run_no`` sent: the fingerprints of that
    run's entries become 0 (unknown), so the next run sends them again."""

    def __bool__(self) -> bool:
        return bool(self.sent) or not self.only_sent

    @property
    def only_sent(self) -> bool:
        """Nothing but records sent (none of the other kinds of change)."""
        return not (self.removed or self.removal_failed or self.marked or self.forget_run)


class LedgerReset(IntEnum):
    KEEP = 0
    FORGET_FINGERPRINTS = 1
    """The entries stay (the contacts are still on the list), every fingerprint becomes 0."""
    CLEAR = 2
    """Every entry goes (another list, another account)."""


@dataclass(slots=True)
class RunProgress:
    """What the pipeline writes after each batch, in one store operation."""

    counts: RunCounts
    progress: float
    checkpoint: dict[str, Any]
    new_errors: list[RunError] = field(default_factory=list)
    message: str | None = None
    ledger: LedgerChanges | None = None
    """Applied in the same operation as the rest (atomically, or journalled in the run)."""


class Store(Protocol):
    """Everything segport persists."""

    # -- lifecycle -------------------------------------------------------
    async def open(self) -> None:
        """Connect and create tables/collections and indexes (idempotent)."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise if the database does not answer (used by ``/readyz``)."""

    # -- segments --------------------------------------------------------
    async def save_segment(self, segment: Segment) -> None:
        """Insert or replace by id. Segment names are unique: raises ValueError otherwise."""

    async def get_segment(self, segment_id: str) -> Segment | None: ...

    async def get_segments(self, segment_ids: Sequence[str]) -> list[Segment]:
        """The segments that exist among ``segment_ids``, in the order given."""

    async def list_segments(
        self, first: int, after: str | None = None, search: str | None = None
    ) -> Page[Segment]:
        """Segments in id order; ``search`` matches a case-insensitive substring of the name."""

    async def count_segment_members(self, segment_ids: Sequence[str]) -> int:
        """Distinct profiles that belong to any of ``segment_ids``."""

    async def segment_member_at(self, segment_ids: Sequence[str], position: int) -> str | None:
        """The id of the profile at ``position`` (from 0) among the distinct profiles of any
        of ``segment_ids`` in profile-id order, as :meth:`iter_segment_members` streams them;
        None past the last (or for no segments). Where a segment is cut in two parts."""

    async def segment_member_counts(self, segment_ids: Sequence[str]) -> dict[str, int]:
        """How many profiles belong to each of ``segment_ids`` (0 for none or an unknown id).

        Kept up to date by every profile write, in both stores: reading is a lookup,
        never a count, and the numbers are exact however many write at once.
        """

    # -- profiles --------------------------------------------------------
    async def upsert_profiles(self, profiles: Sequence[Profile]) -> int:
        """Insert or replace each profile (attributes and segment ids) by id; returns how many.

        Adapters write in batches of their configured write batch size.
        Also records every attribute name seen (for :meth:`profile_attribute_names`).
        """

    async def get_profile(self, profile_id: str) -> Profile | None: ...

    async def profile_attribute_names(self) -> list[str]:
        """Every attribute name seen on any profile, sorted."""

    def iter_segment_members(
        self,
        segment_ids: Sequence[str],
        *,
        after_profile_id: str | None = None,
        batch_size: int = 5000,
    ) -> AsyncIterator[list[Profile]]:
        """Stream the profiles of any of ``segment_ids`` in profile-id order, in batches.

        Each profile appears once even when it belongs to several of the
        segments. Starts strictly after ``after_profile_id`` when given, so a
        resumed run continues after its checkpoint. Never loads the whole
        segment: each batch is one indexed range query.
        """

    # -- connections -----------------------------------------------------
    async def save_connection(self, connection: Connection) -> None:
        """Insert or replace by id."""

    async def get_connection(self, connection_id: str) -> Connection | None: ...

    async def list_connections(
        self,
        first: int,
        after: str | None = None,
        usable_by: Sequence[ConnectionUsableBy] | None = None,
    ) -> Page[Connection]:
        """Connections in id order, optionally only those whose ``usable_by`` is listed."""

    async def delete_connection(self, connection_id: str) -> bool: ...

    # -- exports ---------------------------------------------------------
    async def save_export(self, export: Export) -> None:
        """Insert or replace by id."""

    async def get_export(self, export_id: str) -> Export | None: ...

    async def get_exports(self, export_ids: Sequence[str]) -> list[Export]: ...

    async def list_exports(
        self,
        first: int,
        after: str | None = None,
        search: str | None = None,
        connection_ids: Sequence[str] | None = None,
    ) -> Page[Export]:
        """Exports in id order; ``search`` on display name; ``connection_ids`` restricts."""

    async def export_ids_using_connection(self, connection_id: str) -> list[str]: ...

    async def detach_exports(self, connection_id: str, now: datetime) -> int:
        """Set ``connection_id`` to None on every export that uses the connection."""

    async def delete_export(self, export_id: str) -> bool:
        """Remove the export and its runs."""

    async def list_scheduled_exports(self) -> list[Export]:
        """Exports whose schedule mode is not OFF and that have a connection."""

    # -- runs ------------------------------------------------------------
    async def insert_run(self, run: ExportRun) -> None:
        """Insert a new run.

        Raises :class:`ActiveRunExists` when the export already has a QUEUED or
        RUNNING run, and :class:`DuplicateRun` when ``dedupe_key`` is taken.
        Both are enforced by unique indexes, so concurrent callers cannot race.
        """

    async def get_run(self, run_id: str) -> ExportRun | None: ...

    async def list_runs(
        self, first: int, after: str | None = None, export_id: str | None = None
    ) -> Page[ExportRun]:
        """Runs newest first (id descending), optionally of one export."""

    async def latest_runs(self, export_ids: Sequence[str]) -> dict[str, ExportRun]:
        """The newest run of each of ``export_ids`` that has one, by export id (one query)."""

    async def active_run(self, export_id: str) -> ExportRun | None: ...

    async def list_active_runs(self) -> list[ExportRun]:
        """Every QUEUED or RUNNING run (for recovery after a restart)."""

    async def update_run(
        self,
        run_id: str,
        *,
        expected_status: Sequence[ExportRunStatus] | None = None,
        **changes: Any,
    ) -> ExportRun | None:
        """Compare-and-set: apply ``changes`` (ExportRun field names) if the run's status is
        one of ``expected_status`` (any when None). Returns the updated run, or None when
        the run is missing or its status did not match. Moving to a terminal status frees
        the export's active-run slot."""

    async def record_run_progress(self, run_id: str, progress: RunProgress) -> ExportRun | None:
        """Write counts, progress, checkpoint and (appended, capped) errors in one operation,
        only while the run is RUNNING. Returns the updated run or None."""

    async def request_run_cancel(self, run_id: str) -> ExportRun | None:
        """Set ``cancel_requested``; a QUEUED run becomes CANCELLED at once."""

    # -- export ledgers --------------------------------------------------
    async def ledger_state(self, export_id: str) -> LedgerState | None:
        """The export's ledger state, None before its first ledger run. Settles first what a
        process that died mid-write left (so readers see every confirmed change)."""

    async def start_ledger(
        self, export_id: str, run_id: str, basis: Mapping[str, Any], reset: LedgerReset
    ) -> LedgerState:
        """Begin ``run_id`` on the export's ledger: apply ``reset``, store ``basis``, and
        give the run the next ordinal, or its own again when it resumes (then ``reset``
        is ignored: the run started on this ledger already)."""

    async def ledger_entries(
        self, export_id: str, key_ids: Sequence[int]
    ) -> dict[int, LedgerEntry]:
        """The entries of ``key_ids`` that exist, by key id (one query per few hundred)."""

    def iter_ledger(
        self, export_id: str, *, after_key_id: int | None = None, batch_size: int = 1000
    ) -> AsyncIterator[list[LedgerEntry]]:
        """Every entry in key-id order, in batches (each one indexed range query), after
        ``after_key_id`` when given."""

    def iter_ledger_digest(
        self, export_id: str, *, batch_size: int = 10_000
    ) -> AsyncIterator[LedgerDigest]:
        """Every entry's key id, fingerprint and outcome value, in key-id order, a page
        of at most ``batch_size`` at a time (no empty page)."""
        ...

    async def count_ledger(self, export_id: str) -> int: ...

    async def keep_list_standing(self, export_id: str, run_no: int, key_ids: Sequence[int]) -> None:
        """Keep the key ids of the list's members as run ``run_no`` of the export's ledger
        found them before it first sent a record its ledger did not hold, so that a resume
        of that run judges by them and not by a list its own sends have changed. Replaces
        what the export kept before; written before the run sends such a record. Raises
        ValueError when the export has no ledger (no run started on it)."""

    async def list_standing(self, export_id: str, run_no: int) -> list[int] | None:
        """What :meth:`keep_list_standing` kept for run ``run_no``, or None (it kept none,
        or another run's is kept, or a write of it did not complete). What a run kept stays
        until another run starts on the ledger (:meth:`start_ledger`) or the export goes."""

    async def settle_ledger(self, export_id: str) -> None:
        """Fold what the export's runs journalled into its entries, if a store journals
        (readers and writers of the ledger do it first anyway). A run calls it once it
        has ended, so that the next one does not wait for it."""

    # -- oauth states ----------------------------------------------------
    async def save_oauth_state(self, state: OAuthState) -> None: ...

    async def consume_oauth_state(self, state: str) -> OAuthState | None:
        """Atomically remove and return the state (single use), expired or not."""

    # -- refresh schedule & small key/value -----------------------------
    async def get_refresh_schedule(self) -> RefreshSchedule: ...

    async def save_refresh_schedule(self, schedule: RefreshSchedule) -> None: ...

    async def claim_once(self, key: str, expires_at: datetime) -> bool:
        """True for the first caller of ``key`` (until it expires), False for every other.

        Used by the scheduler tick so that several workers act once per due time.
        """
