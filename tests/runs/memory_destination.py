"""An in-test destination built only on the public plugin API: it keeps what it receives.

It behaves like a small real destination: contacts need a well-formed
``email``, duplicates are by lower-cased e-mail, uploads return receipts that
``confirm`` settles later, and a test can make it refuse a batch, lose its
authorization, fail permanently, or hold an upload until the test lets go.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from service.plugins import (
    AuthorizationLost,
    BatchOutcome,
    Confirmation,
    Destination,
    DestinationContext,
    DestinationLimits,
    DestinationSession,
    MappingTarget,
    RecordRejection,
    Rejection,
    UploadBatch,
    hookimpl,
)


@dataclass
class Behaviour:
    """What the test wants the destination to do (mutable while a run goes)."""

    received: list[dict[str, Any]] = field(default_factory=list)
    """Every record of every upload, in arrival order (repeats included)."""
    batches: list[UploadBatch] = field(default_factory=list)
    confirmed: list[str] = field(default_factory=list)
    receipts: dict[str, int] = field(default_factory=dict)
    """Records per receipt handed out (uploads that failed hand out none)."""
    samples: dict[str, list[str]] = field(default_factory=dict)
    """The error samples each receipt's confirmation reports."""
    reject_batches_with: str | None = None
    """An upload containing an e-mail with this text is refused as a whole."""
    refuse_emails_with: str | None = None
    """Records whose e-mail holds this text are refused one by one, in words that quote the
    address (as real destinations do): on upload, and again in the receipt's samples."""
    fail_upload_number: int | None = None
    fail_with: Exception | None = None
    """What failing uploads raise (a destination error, or whatever else may come up)."""
    fail_count: int = 1
    """How many uploads in a row, from ``fail_upload_number``, raise ``fail_with``."""
    failing_confirmation: tuple[str, int, str] | None = None
    """(receipt, accepted, words): that receipt's confirmation says the destination's
    processing failed after accepting this many of its records."""
    hold_upload_number: int | None = None
    """This upload (1-based) records its batch, then waits until ``release`` is set."""
    release: asyncio.Event = field(default_factory=asyncio.Event)
    holding: asyncio.Event = field(default_factory=asyncio.Event)
    uploads: int = 0

    def emails(self) -> set[str]:
        return {r["email"] for r in self.received}


class MemorySession(DestinationSession):
    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour

    async def upload(self, batch: UploadBatch) -> BatchOutcome:
        b = self.behaviour
        b.uploads += 1
        number = b.uploads
        first_failing = b.fail_upload_number
        failing = first_failing is not None and 0 <= number - first_failing < b.fail_count
        if failing and b.fail_with is not None:
            raise b.fail_with
        b.batches.append(batch)
        records = [orjson.loads(r.encoded) for r in batch.records]
        b.received.extend(records)
        if b.hold_upload_number == number:
            b.holding.set()
            await b.release.wait()
        if b.reject_batches_with and any(b.reject_batches_with in r["email"] for r in records):
            return BatchOutcome(
                batch_error="List quota reached: the account holds too many contacts"
            )
        receipt = f"receipt-{number}"
        refused = [
            RecordRejection(
                record.profile_id,
                Rejection("BLOCKED", f"{fields['email']} is on the block list", "email"),
            )
            for record, fields in zip(batch.records, records, strict=True)
            if b.refuse_emails_with and b.refuse_emails_with in fields["email"]
        ]
        b.receipts[receipt] = len(batch.records) - len(refused)
        b.samples[receipt] = [
            f"Row {row}: invalid email address {fields['email']!r}"
            for row, fields in enumerate(records, start=1)
            if b.refuse_emails_with and b.refuse_emails_with in fields["email"]
        ]
        return BatchOutcome(receipt=receipt, rejected=refused)

    async def confirm(self, receipt: str) -> Confirmation:
        self.behaviour.confirmed.append(receipt)
        failing = self.behaviour.failing_confirmation
        if failing is not None and failing[0] == receipt:
            return Confirmation(accepted=failing[1], failure=failing[2])
        return Confirmation(
            accepted=self.behaviour.receipts[receipt],
            error_samples=self.behaviour.samples.get(receipt, []),
        )


class MemoryDestination(Destination):
    key = "memory"
    display_name = "Memory"
    auth_kind = "none"
    mapping_targets = (
        MappingTarget(name="email", label="E-mail", required=True, max_length=50, kind="email"),
        MappingTarget(name="first_name", label="First name", max_length=50),
    )

    def __init__(self, behaviour: Behaviour, limits: DestinationLimits) -> None:
        self.behaviour = behaviour
        self.limits = limits

    def build_record(self, values: Mapping[str, Any]) -> dict[str, Any] | Rejection:
        email = values.get("email")
        if not isinstance(email, str) or not email.strip():
            return Rejection("MISSING_REQUIRED", "the e-mail address is missing", "email")
        email = email.strip()
        if "@" not in email or email.startswith("@") or email.endswith("@"):
            return Rejection("EMAIL_INVALID", f"{email} is not an e-mail address", "email")
        record: dict[str, Any] = {"email": email}
        if isinstance(values.get("first_name"), str):
            record["first_name"] = values["first_name"]
        return record

    def record_dedupe_key(self, record: Mapping[str, Any]) -> str:
        return str(record["email"]).lower()

    def batch_envelope_size(self, export_settings: Mapping[str, Any]) -> int:
        return len(b'{"contacts":[]}')

    def open_session(self, ctx: DestinationContext) -> DestinationSession:
        return MemorySession(self.behaviour)


class MemoryPlugin:
    def __init__(self, destination: MemoryDestination) -> None:
        self.destination = destination

    @hookimpl
    def register_destinations(self) -> list[Destination]:
        return [self.destination]


__all__ = ["AuthorizationLost", "Behaviour", "MemoryDestination", "MemoryPlugin"]
