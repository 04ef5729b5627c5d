"""Conversion between runs and plain documents, shared by both store adapters.

Documents as in :mod:`service.store._records`. A run document also carries the
derived active-run slot (:data:`~service.store.rules.ACTIVE_SLOT_FIELD`), which
the readers ignore.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from service.domain import ExportRun, ExportRunStatus, ExportRunTrigger, RunCounts, RunError
from service.domain.personal_data import without_email_addresses
from service.store._records import Document, as_utc, optional_utc
from service.store.base import RunProgress
from service.store.rules import ACTIVE_SLOT_FIELD, active_export_id


def counts_to_doc(counts: RunCounts) -> Document:
    return {
        "profiles_total": counts.profiles_total,
        "profiles_read": counts.profiles_read,
        "contacts_sent": counts.contacts_sent,
        "skipped_invalid": counts.skipped_invalid,
        "skipped_duplicate": counts.skipped_duplicate,
        "accepted_by_destination": counts.accepted_by_destination,
        "rejected_by_destination": counts.rejected_by_destination,
        "cannot_add_to_list": counts.cannot_add_to_list,
        "skipped_unchanged": counts.skipped_unchanged,
        "removed_from_list": counts.removed_from_list,
        "removals_failed": counts.removals_failed,
        "field_warnings": counts.field_warnings,
    }


def counts_from_doc(doc: Mapping[str, Any]) -> RunCounts:
    # Only known keys: a count added later reads as 0 from older documents.
    return RunCounts(**{k: int(v) for k, v in doc.items() if k in RunCounts.__slots__})


def error_to_doc(error: RunError) -> Document:
    return {
        "code": error.code,
        "message": error.message,
        "profile_id": error.profile_id,
        "field": error.field,
    }


def error_from_doc(doc: Mapping[str, Any]) -> RunError:
    return RunError(
        code=doc["code"],
        message=doc["message"],
        profile_id=doc.get("profile_id"),
        field=doc.get("field"),
    )


def run_to_doc(run: ExportRun) -> Document:
    return {
        "id": run.id,
        "export_id": run.export_id,
        "status": run.status.value,
        "trigger": run.trigger.value,
        "requested_by": run.requested_by,
        "queued_at": as_utc(run.queued_at),
        "started_at": optional_utc(run.started_at),
        "finished_at": optional_utc(run.finished_at),
        "progress": float(run.progress),
        "counts": counts_to_doc(run.counts),
        "message": run.message,
        "errors": [error_to_doc(e) for e in run.errors],
        "checkpoint": dict(run.checkpoint),
        "cancel_requested": bool(run.cancel_requested),
        "dedupe_key": run.dedupe_key,
        "attempt": int(run.attempt),
        # derived: holds the export's one active-run slot while the run is active
        ACTIVE_SLOT_FIELD: active_export_id(run.status, run.export_id),
    }


def run_from_doc(doc: Mapping[str, Any]) -> ExportRun:
    return ExportRun(
        id=doc["id"],
        export_id=doc["export_id"],
        status=ExportRunStatus(doc["status"]),
        trigger=ExportRunTrigger(doc["trigger"]),
        requested_by=doc["requested_by"],
        queued_at=as_utc(doc["queued_at"]),
        started_at=optional_utc(doc["started_at"]),
        finished_at=optional_utc(doc["finished_at"]),
        progress=float(doc["progress"]),
        counts=counts_from_doc(doc["counts"]),
        message=doc["message"],
        errors=[error_from_doc(e) for e in doc["errors"]],
        checkpoint=dict(doc["checkpoint"] or {}),
        cancel_requested=bool(doc["cancel_requested"]),
        dedupe_key=doc["dedupe_key"],
        attempt=int(doc["attempt"]),
    )


def run_changes_to_doc(changes: Mapping[str, Any]) -> Document:
    """``update_run`` keyword changes as document fields, rejecting unknown or bad ones.

    Values may be given as domain types (``ExportRunStatus``, ``RunCounts``,
    ``RunError`` ...) or as their plain values.
    """
    doc: Document = {}
    for name, value in changes.items():
        if name not in _RUN_CHANGE_ENCODERS:
            raise ValueError(
                f"update_run cannot change {name!r}: not an ExportRun field that may change"
            )
        doc[name] = _RUN_CHANGE_ENCODERS[name](value)
    return doc


def _enum_value(kind: type[ExportRunStatus] | type[ExportRunTrigger]) -> Any:
    def encode(value: Any) -> str:
        return kind(value).value

    return encode


def _optional_datetime(value: Any) -> datetime | None:
    if value is not None and not isinstance(value, datetime):
        raise ValueError(f"expected a datetime or None, got {value!r}")
    return optional_utc(value)


def _required_datetime(value: Any) -> datetime:
    if not isinstance(value, datetime):
        raise ValueError(f"expected a datetime, got {value!r}")
    return as_utc(value)


def _counts(value: Any) -> Document:
    return counts_to_doc(value if isinstance(value, RunCounts) else counts_from_doc(value))


def _errors(value: Any) -> list[Document]:
    return [error_to_doc(e if isinstance(e, RunError) else error_from_doc(e)) for e in value]


def _optional_str(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"expected a string or None, got {value!r}")
    return value


def _optional_message(value: Any) -> str | None:
    # What ExportRun itself keeps out of a message, kept out of the database too.
    text = _optional_str(value)
    return None if text is None else without_email_addresses(text)


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


_RUN_CHANGE_ENCODERS: dict[str, Any] = {
    "export_id": _str,
    "status": _enum_value(ExportRunStatus),
    "trigger": _enum_value(ExportRunTrigger),
    "requested_by": _optional_str,
    "queued_at": _required_datetime,
    "started_at": _optional_datetime,
    "finished_at": _optional_datetime,
    "progress": float,
    "counts": _counts,
    "message": _optional_message,
    "errors": _errors,
    "checkpoint": dict,
    "cancel_requested": bool,
    "dedupe_key": _optional_str,
    "attempt": int,
}


def status_values(statuses: Sequence[ExportRunStatus]) -> list[str]:
    """Run statuses (or their values) as stored."""
    return [ExportRunStatus(s).value for s in statuses]


def progress_to_doc(progress: RunProgress) -> tuple[Document, list[Document]]:
    """A progress write as the fields it sets and the errors it appends to the sample.

    ``message`` is among the fields only when given: a progress without one keeps
    the stored message.
    """
    changes: Document = {
        "counts": counts_to_doc(progress.counts),
        "progress": float(progress.progress),
        "checkpoint": dict(progress.checkpoint),
    }
    if progress.message is not None:
        changes["message"] = without_email_addresses(progress.message)
    return changes, [error_to_doc(e) for e in progress.new_errors]
