"""Turning profiles into destination records: field mapping, validation, de-duplication.

Every profile read ends as exactly one of: a record to send, skipped as
invalid, or skipped as a duplicate of a record already sent in this run. A
bounded sample of why profiles were skipped is kept, without the personal
values themselves (a rejected e-mail address must not land in logs or in the
run's error list).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from service.domain import RUN_ERROR_SAMPLE_SIZE, FieldMapping, Profile, RunError
from service.plugins.api import Destination, EncodedRecord, Rejection

REDACTED = "<redacted>"


class Outcome(Enum):
    SEND = "send"
    INVALID = "invalid"
    DUPLICATE = "duplicate"


@dataclass(slots=True)
class ErrorSample:
    """A bounded list of run errors; ``limit`` counts what the run already holds."""

    limit: int = RUN_ERROR_SAMPLE_SIZE
    errors: list[RunError] = field(default_factory=list)
    seen: int = 0

    def add(self, error: RunError) -> None:
        self.seen += 1
        if len(self.errors) < self.limit:
            self.errors.append(error)

    def take(self) -> list[RunError]:
        """The errors gathered since the last call; the room left shrinks accordingly."""
        taken, self.errors = self.errors, []
        self.limit -= len(taken)
        return taken


class RecordMapper:
    """Maps profiles for one run and remembers which records were already taken."""

    def __init__(self, destination: Destination, field_mapping: Sequence[FieldMapping]) -> None:
        self.destination = destination
        # (source attribute, target) pairs, looked up once per profile.
        self._pairs = [(m.source, m.target) for m in field_mapping]
        self._seen: set[str] = set()

    def values(self, profile: Profile) -> dict[str, Any]:
        """Target name to the profile's raw value; absent when the profile has none."""
        attributes = profile.attributes
        values: dict[str, Any] = {}
        for source, target in self._pairs:
            value = attributes.get(source)
            if value is not None:
                values[target] = value
        return values

    def map(self, profile: Profile) -> EncodedRecord | RunError:
        """The encoded record to send, or the reason the profile is skipped.

        A returned :class:`RunError` with code ``DUPLICATE`` means a record with
        the same key was already taken; any other code means invalid. The key is
        not remembered here: call :meth:`take` once the record is accepted for
        sending, so that a record refused later (too large) does not shadow a
        valid duplicate.
        """
        values = self.values(profile)
        built = self.destination.build_record(values)
        if isinstance(built, Rejection):
            return _error(profile.id, built, values)
        key = self.destination.record_dedupe_key(built)
        if key in self._seen:
            return RunError(
                code="DUPLICATE",
                message="another profile in this run has the same "
                "destination key (e.g. the same e-mail address)",
                profile_id=profile.id,
            )
        encoded = self.destination.encode_record(built)
        # orjson's output keeps its ~4 KB working buffer; a right-sized copy keeps a
        # full batch (40,000 records for Constant Contact) at a few MB instead of 160.
        return EncodedRecord(
            profile_id=profile.id, dedupe_key=key, encoded=memoryview(encoded).tobytes()
        )

    def take(self, record: EncodedRecord) -> None:
        """Remember ``record``'s key: later records with it are duplicates."""
        self._seen.add(record.dedupe_key)

    @property
    def taken(self) -> int:
        return len(self._seen)


def _error(profile_id: str, rejection: Rejection, values: Mapping[str, Any]) -> RunError:
    message = rejection.message
    # A destination may quote the bad value; the run's error list must not hold it.
    for value in values.values():
        if isinstance(value, str) and len(value) >= 3 and value in message:
            message = message.replace(value, REDACTED)
    return RunError(
        code=rejection.code, message=message, profile_id=profile_id, field=rejection.field
    )
