"""A run's checkpoint: where a resumed job continues, and whether a job is on the run.

Stored in the run as JSON (``ExportRun.checkpoint``) in this shape, which every
version so far has written and read::

    {"last_profile_id": "p00042" | null,
     "pending_receipts": [{"receipt": "...", "records": 40}, ...],
     "heartbeat_at": "2026-05-04T09:00:00.123456+00:00" | null,
     "full_resync": true, "ledger_note": "..."}   # these two only when set

(``full_resync``: the run was asked to send every record whatever the ledger says;
``ledger_note``: why the run found the export's ledger reset, said again when it ends.)

Keys may be missing (a run that never started holds ``{}``); they read as empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from service.domain import ExportRun


@dataclass(frozen=True, slots=True)
class PendingReceipt:
    """A batch the destination took but has not confirmed yet: its receipt, and how many
    of its records are still unaccounted for."""

    receipt: str
    records: int

    def to_json(self) -> dict[str, Any]:
        return {"receipt": self.receipt, "records": self.records}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> PendingReceipt:
        return cls(str(raw["receipt"]), int(raw["records"]))


@dataclass(frozen=True, slots=True)
class Checkpoint:
    last_profile_id: str | None = None
    """The last profile whose batch the destination acknowledged (None: none yet)."""
    pending_receipts: tuple[PendingReceipt, ...] = ()
    heartbeat_at: datetime | None = None
    """When a job last said it is on the run; None once it released the run (another
    job may take it at once) or before any job started it."""
    full_resync: bool = False
    ledger_note: str | None = None
    whole_list: int | None = None
    """A whole-list mirror run: the members outside the export its preview counted."""

    def to_json(self) -> dict[str, Any]:
        raw: dict[str, Any] = {
            "last_profile_id": self.last_profile_id,
            "pending_receipts": [receipt.to_json() for receipt in self.pending_receipts],
            "heartbeat_at": None if self.heartbeat_at is None else self.heartbeat_at.isoformat(),
        }
        # Only when set: a run that uses neither keeps the shape every version wrote.
        if self.full_resync:
            raw["full_resync"] = True
        if self.ledger_note is not None:
            raw["ledger_note"] = self.ledger_note
        if self.whole_list is not None:
            raw["whole_list"] = self.whole_list
        return raw

    @classmethod
    def from_json(cls, raw: Mapping[str, Any] | None) -> Checkpoint:
        raw = raw or {}
        heartbeat = raw.get("heartbeat_at")
        return cls(
            last_profile_id=raw.get("last_profile_id"),
            pending_receipts=tuple(
                PendingReceipt.from_json(receipt) for receipt in raw.get("pending_receipts") or []
            ),
            heartbeat_at=datetime.fromisoformat(heartbeat) if heartbeat else None,
            full_resync=bool(raw.get("full_resync")),
            ledger_note=raw.get("ledger_note"),
            whole_list=None if raw.get("whole_list") is None else int(raw["whole_list"]),
        )

    def beating(self, now: datetime) -> Checkpoint:
        """The same checkpoint with a fresh heartbeat."""
        return replace(self, heartbeat_at=now)


def heartbeat_age(run: ExportRun, now: datetime) -> timedelta | None:
    """How long since a job last said it is on ``run`` (None: released or never started)."""
    beat = Checkpoint.from_json(run.checkpoint).heartbeat_at
    return None if beat is None else now - beat
