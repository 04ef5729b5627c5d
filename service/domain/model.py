"""The records segport keeps: profiles, segments, connections, exports, runs, schedules.

Every store adapter reads and writes exactly these dataclasses; the API layer
maps them to GraphQL types; the run pipeline works on them. Identifiers are
plain strings made by :func:`new_id` (time-ordered, so ordering by id is
ordering by creation), except profile ids, which are the caller's own.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from service.domain.personal_data import safe_reason, without_email_addresses


class _MonotonicIds:
    """Makes :func:`new_id` values; within one process each id sorts after the previous."""

    _RANDOM_BITS = 56

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_random = 0

    def __call__(self) -> str:
        ms = int(time.time() * 1000)
        with self._lock:
            if ms > self._last_ms:
                self._last_ms, self._last_random = ms, int.from_bytes(os.urandom(7))
            else:
                # Same millisecond (or the clock stepped back): count on from the last id
                # (as ULID's monotonic mode does), so creation order is id order.
                self._last_random += 1 + int.from_bytes(os.urandom(1))
                if self._last_random >> self._RANDOM_BITS:
                    self._last_ms, self._last_random = self._last_ms + 1, 0
            return f"{self._last_ms:012x}{self._last_random:014x}"


new_id = _MonotonicIds()
"""A 26-character, time-ordered identifier (ULID-like, lowercase hex): ``new_id()``.

The first 12 hex digits are milliseconds since the epoch, the other 14 random; ids made
by one process sort in the order they were made, ids of different processes to the
millisecond.
"""


def utcnow() -> datetime:
    """The current time, timezone-aware UTC, truncated to milliseconds (what MongoDB keeps)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class Role(StrEnum):
    ADMIN = "admin"
    CONTRIBUTOR = "contributor"
    VIEWER = "viewer"


class ConnectionUsableBy(StrEnum):
    ADMINS = "ADMINS"
    ADMINS_AND_CONTRIBUTORS = "ADMINS_AND_CONTRIBUTORS"


class ConnectionStatus(StrEnum):
    PENDING_AUTHORIZATION = "PENDING_AUTHORIZATION"
    CONNECTED = "CONNECTED"
    NEEDS_REAUTHORIZATION = "NEEDS_REAUTHORIZATION"


class ExportRunStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    SKIPPED = "SKIPPED"

    @property
    def is_terminal(self) -> bool:
        return self not in ACTIVE_RUN_STATUSES


ACTIVE_RUN_STATUSES = frozenset({ExportRunStatus.QUEUED, ExportRunStatus.RUNNING})


class ExportRunTrigger(StrEnum):
    ON_DEMAND = "ON_DEMAND"
    REFRESH_SCHEDULE = "REFRESH_SCHEDULE"
    EXPORT_SCHEDULE = "EXPORT_SCHEDULE"


class ScheduleMode(StrEnum):
    REFRESH_SCHEDULE = "REFRESH_SCHEDULE"
    OWN = "OWN"
    OFF = "OFF"


class Frequency(StrEnum):
    DAILY = "DAILY"
    WEEKLY = "WEEKLY"


@dataclass(slots=True)
class Profile:
    id: str
    attributes: dict[str, Any]
    segment_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Segment:
    id: str
    name: str
    description: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(slots=True)
class Connection:
    id: str
    display_name: str
    destination_type: str
    usable_by: ConnectionUsableBy
    status: ConnectionStatus
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    settings: dict[str, Any] = field(default_factory=dict)
    """Non-secret connection settings (secret ones go to ``credentials``)."""
    credentials: str | None = None
    """Encrypted credentials (a Fernet token); never decrypted by the store."""
    account: str | None = None
    export_user: str | None = None
    data_privacy_accepted_by: str | None = None
    data_privacy_accepted_at: datetime | None = None
    status_message: str | None = None
    """Why the connection needs attention (e.g. the destination refused the refresh token)."""
    account_id: str | None = None
    """The destination's stable id of the connected account (``Destination.account_identity``),
    once connected: authorizing into another account needs the admin's confirmation."""
    auth_kind: str | None = None
    """How it connects (``oauth2``, ``api_key``, ``none``: one of its destination's
    ``auth_kinds``). None for connections stored before it was recorded: they connect the
    destination's first way (``service.connections.destinations.auth_kind_of``)."""


@dataclass(slots=True)
class Recurrence:
    """When something runs: daily or on chosen weekdays, at 1 to 4 local times."""

    frequency: Frequency
    times: list[str]
    """``HH:MM`` wall-clock times in ``timezone``, sorted, 1 to 4 of them."""
    timezone: str
    """An IANA time zone name, e.g. ``Europe/Paris``."""
    weekdays: list[int] = field(default_factory=list)
    """ISO weekdays (1 = Monday .. 7 = Sunday); used when ``frequency`` is WEEKLY."""


@dataclass(slots=True)
class ExportSchedule:
    mode: ScheduleMode = ScheduleMode.REFRESH_SCHEDULE
    recurrence: Recurrence | None = None
    """Only for mode OWN."""


@dataclass(slots=True)
class RefreshSchedule:
    """The system refresh schedule: off by default."""

    enabled: bool = False
    recurrence: Recurrence = field(
        default_factory=lambda: Recurrence(
            frequency=Frequency.DAILY, times=["02:00"], timezone="UTC"
        )
    )
    updated_by: str | None = None
    updated_at: datetime | None = None


class SyncMode(StrEnum):
    """What a run of an export sends (and removes); see README "Sync modes"."""

    SEND_ALL = "SEND_ALL"
    """Every record of the segment, every run (the behaviour before sync modes)."""
    SEND_CHANGES = "SEND_CHANGES"
    """Records that are new or whose mapped contact changed since the destination last
    confirmed them (the export's ledger)."""
    MIRROR = "MIRROR"
    """As SEND_CHANGES, then take off the list the contacts this export put there that
    are no longer in any of its segments."""


DEFAULT_SYNC_MODE = SyncMode.SEND_CHANGES
"""The mode of an export created without one (stored exports made before sync modes
existed read as SEND_ALL, and keep behaving as they did)."""


@dataclass(slots=True)
class FieldMapping:
    source: str
    """A profile attribute name."""
    target: str
    """A mapping target declared by the destination."""


@dataclass(slots=True)
class Export:
    id: str
    display_name: str
    connection_id: str | None
    destination_type: str
    settings: dict[str, Any]
    field_mapping: list[FieldMapping]
    segment_ids: list[str]
    schedule: ExportSchedule
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    sync_mode: SyncMode = SyncMode.SEND_ALL


@dataclass(slots=True)
class RunCounts:
    """What a run did.

    Always: profiles_read = contacts_sent + skipped_unchanged + skipped_invalid +
    skipped_duplicate; and every removal attempted is removed_from_list or removals_failed.
    """

    profiles_total: int = 0
    profiles_read: int = 0
    contacts_sent: int = 0
    skipped_invalid: int = 0
    skipped_duplicate: int = 0
    accepted_by_destination: int = 0
    rejected_by_destination: int = 0
    cannot_add_to_list: int = 0
    skipped_unchanged: int = 0
    """Records the destination already holds as they are (the export's ledger says so)."""
    removed_from_list: int = 0
    removals_failed: int = 0
    field_warnings: int = 0
    """Optional values left out of (or shortened in) contacts that were sent."""


@dataclass(slots=True)
class RunError:
    """One sampled per-record or per-batch error: which profile, which field, a stable code
    and a reason. Never the value: whoever builds one, its reason (``message``) is cleaned
    of quoted values and e-mail addresses (:func:`~service.domain.personal_data.safe_reason`).
    """

    code: str
    message: str
    """The reason, in words (a destination's words, without the values they quoted)."""
    profile_id: str | None = None
    field: str | None = None

    def __post_init__(self) -> None:
        self.message = safe_reason(self.message)


@dataclass(slots=True)
class ExportRun:
    id: str
    export_id: str
    status: ExportRunStatus
    trigger: ExportRunTrigger
    requested_by: str | None
    queued_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    progress: float = 0.0
    counts: RunCounts = field(default_factory=RunCounts)
    message: str | None = None
    errors: list[RunError] = field(default_factory=list)
    """A bounded sample (the store keeps at most ``RUN_ERROR_SAMPLE_SIZE``)."""
    checkpoint: dict[str, Any] = field(default_factory=dict)
    """Pipeline state to resume from: last profile id sent, activities to confirm, ..."""
    cancel_requested: bool = False
    dedupe_key: str | None = None
    """For scheduled runs: ``<export id>@<due time>``, unique, so a due run is made once."""
    attempt: int = 0
    """How many times a job has started this run."""

    def __post_init__(self) -> None:
        # Every viewer reads the message; a destination's words may quote an address.
        if self.message is not None:
            self.message = without_email_addresses(self.message)


RUN_ERROR_SAMPLE_SIZE = 100


@dataclass(slots=True)
class OAuthState:
    """A pending OAuth authorization: random, single-use, bound to a connection and a user."""

    state: str
    connection_id: str
    user: str
    code_verifier: str
    redirect_uri: str
    expires_at: datetime
    created_at: datetime = field(default_factory=utcnow)
    allow_account_change: bool = False
    """The admin confirmed that this authorization may connect a different account."""
