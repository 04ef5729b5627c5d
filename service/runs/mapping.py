"""Turning profiles into destination records: field mapping, validation, de-duplication.

Every profile read ends as exactly one of: a record to send, skipped as
invalid, or skipped as a duplicate of a record already sent in this run. A
bounded sample of why profiles were skipped is kept, without the personal
values themselves (a rejected e-mail address must not land in logs or in the
run's error list).
"""

from __future__ import annotations

from array import array
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


class KeyFingerprints:
    """The set of de-duplication keys taken in one run, kept as 128-bit fingerprints.

    A million e-mail addresses as a ``set[str]`` cost ~110 MB (string objects plus the
    table); here they cost 32 MB: two parallel ``array('q')`` columns of an
    open-addressing table at most half full. A fingerprint is two SipHash values (Python's
    ``hash`` of the key and of the key with a suffix), so two different keys collide with a
    probability around 2**-127 per pair: never, in practice. String hashes are salted per
    process, which is fine: the set lives and is rebuilt within one process.
    """

    __slots__ = ("_count", "_high", "_low", "_mask")

    def __init__(self, capacity: int = 1 << 12) -> None:
        self._high = array("q", bytes(8 * capacity))
        self._low = array("q", bytes(8 * capacity))
        self._mask = capacity - 1
        self._count = 0

    def _find(self, key: str) -> tuple[int, int, int, bool]:
        high = hash(key) | 1  # never 0, which marks an empty slot
        low = hash(key + "\x1f")
        highs, mask = self._high, self._mask
        slot = high & mask
        while True:
            found = highs[slot]
            if found == 0:
                return slot, high, low, False
            if found == high and self._low[slot] == low:
                return slot, high, low, True
            slot = (slot + 1) & mask

    def __contains__(self, key: str) -> bool:
        return self._find(key)[3]

    def add(self, key: str) -> None:
        slot, high, low, found = self._find(key)
        if found:
            return
        self._high[slot] = high
        self._low[slot] = low
        self._count += 1
        if self._count * 2 > self._mask:
            self._grow()

    def __len__(self) -> int:
        return self._count

    def _grow(self) -> None:
        highs, lows = self._high, self._low
        capacity = 2 * (self._mask + 1)
        self._high = new_highs = array("q", bytes(8 * capacity))
        self._low = new_lows = array("q", bytes(8 * capacity))
        self._mask = mask = capacity - 1
        for high, low in zip(highs, lows, strict=True):
            if high:
                slot = high & mask
                while new_highs[slot]:
                    slot = (slot + 1) & mask
                new_highs[slot] = high
                new_lows[slot] = low


class RecordMapper:
    """Maps profiles for one run and remembers which records were already taken."""

    def __init__(self, destination: Destination, field_mapping: Sequence[FieldMapping]) -> None:
        self.destination = destination
        # (source attribute, target) pairs, looked up once per profile.
        self._pairs = [(m.source, m.target) for m in field_mapping]
        self._seen = KeyFingerprints()

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
