"""Turning profiles into destination records: field mapping, validation, de-duplication.

Every profile read ends as exactly one of: a record to send, skipped as
invalid, or skipped as a duplicate of a record already sent in this run. A
bounded sample of why profiles were skipped is kept, without the personal
values themselves (a rejected e-mail address must not land in logs or in the
run's error list): the profile id, the field, a code and a reason.
"""

from __future__ import annotations

import secrets
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from service.domain import RUN_ERROR_SAMPLE_SIZE, FieldMapping, Profile, RunError
from service.domain.personal_data import REDACTED
from service.plugins.api import Destination, EncodedRecord, FieldWarning, Rejection


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


class SeenKeys:
    """The de-duplication keys a run has taken, as 64-bit fingerprints in one flat array.

    A key is kept as Python's ``hash`` of the key behind a random prefix drawn for this
    set (SipHash; the prefix makes each run's fingerprints its own, even where
    ``PYTHONHASHSEED`` is fixed), never as the key itself: no personal data is kept and
    none reaches the disk. The fingerprints sit in an open-addressing table (linear
    probing), 8 bytes a slot: a million keys cost 11 MB, where a set of a million e-mail
    strings costs about 110 MB.

    Two different keys are taken for one only if their fingerprints match: for a million
    keys, about once in 37 million runs. The later key's profile is then skipped as a
    duplicate, counted and sampled like any other (its profile id in the run's errors),
    and sent by the next run, whose fingerprints differ. Earlier versions kept 128 bits a
    key in a temporary SQLite file, whose inserts took 3 s of a core for a million keys,
    or 96 bits in memory, 16 MB for a million (a third of a 1M export's growth over 100k).
    """

    def __init__(self, expected: int = 0) -> None:
        """``expected``: about how many keys will come (the table is made for them at
        once, growing only past them)."""
        self._table = _zeros(max(_FIRST_SLOTS, int(expected / _MOST_USED) + 1))
        self._count = 0
        self._salt = secrets.token_hex(4)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        table = self._table
        size = len(table)
        fingerprint = _fingerprint(self._salt + key)
        slot = fingerprint % size
        while (found := table[slot]) != 0:
            if found == fingerprint:
                return True
            slot = slot + 1 if slot + 1 < size else 0
        return False

    def add_if_new(self, key: str) -> bool:
        """Remember ``key``; False when it was already there."""
        return self.add_many([key])[0]

    def add_many(self, keys: Sequence[str]) -> list[bool]:
        """Remember each of ``keys`` in order; for each, False when it was there already
        (earlier, or earlier in ``keys``)."""
        fresh: list[bool] = []
        if not keys:
            return fresh
        answer = fresh.append
        table, salt = self._table, self._salt
        size = len(table)
        room = int(size * _MOST_USED) - self._count
        for key in keys:
            fingerprint = _fingerprint(salt + key)
            slot = fingerprint % size
            while (found := table[slot]) != 0:
                if found == fingerprint:
                    answer(False)
                    break
                slot = slot + 1 if slot + 1 < size else 0
            else:
                table[slot] = fingerprint
                answer(True)
                self._count += 1
                room -= 1
                if room < 0:
                    self._grow()
                    table = self._table
                    size = len(table)
                    room = int(size * _MOST_USED) - self._count
        return fresh

    def _grow(self) -> None:
        old = self._table
        table = self._table = _zeros(2 * len(old))
        size = len(table)
        for fingerprint in old:
            if fingerprint:
                slot = fingerprint % size
                while table[slot] != 0:
                    slot = slot + 1 if slot + 1 < size else 0
                table[slot] = fingerprint

    def __len__(self) -> int:
        return self._count

    def close(self) -> None:
        """Let the table go (the set is empty afterwards)."""
        self._table = _zeros(1)
        self._count = 0


def _zeros(slots: int) -> array[int]:
    """An empty table: made in place (``array("Q", bytes(n))`` would hold a second copy
    at once, which the allocator then keeps)."""
    return array("Q", [0]) * slots


def _fingerprint(salted_key: str) -> int:
    """64 bits of a salted key, never 0 (0 marks an empty slot)."""
    return (hash(salted_key) & _BITS) or 1


_BITS = (1 << 64) - 1
_FIRST_SLOTS = 1 << 16
"""Slots at least (512 KB)."""
_MOST_USED = 0.75
"""The share of the slots in use at most (linear probing stays short under it); the
table doubles past it."""


class RecordMapper:
    """Maps profiles for one run, deciding for each: send, skip as invalid, or as duplicate.

    Use it as a context manager (or call :meth:`close`) to drop its key set.
    """

    def __init__(
        self,
        destination: Destination,
        field_mapping: Sequence[FieldMapping],
        *,
        envelope_size: int = 0,
        expected: int = 0,
    ) -> None:
        """``expected``: about how many profiles will be mapped (0: not known)."""
        self.destination = destination
        # (source attribute, target) pairs, looked up once per profile.
        self._pairs = [(m.source, m.target) for m in field_mapping]
        # A record must fit in a request on its own: envelope + record < the byte limit.
        self._max_record_bytes = destination.limits.batch_max_bytes - envelope_size - 1
        self._seen = SeenKeys(expected)
        self.warnings: Sequence[FieldWarning] = ()
        """The field warnings of the profile :meth:`map` last mapped (see
        :mod:`service.runs.warnings`)."""

    @property
    def seen(self) -> SeenKeys:
        """The keys of every record taken so far (sent, or unchanged)."""
        return self._seen

    def __enter__(self) -> RecordMapper:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._seen.close()

    def values(self, profile: Profile) -> dict[str, Any]:
        """Target name to the profile's raw value; absent when the profile has none."""
        attributes = profile.attributes
        values: dict[str, Any] = {}
        for source, target in self._pairs:
            value = attributes.get(source)
            if value is not None:
                values[target] = value
        return values

    def map_many(
        self, profiles: Sequence[Profile]
    ) -> list[tuple[EncodedRecord | RunError, Sequence[FieldWarning]]]:
        """:meth:`map` for each of ``profiles``, in order, with each one's field warnings;
        the de-duplication keys of the chunk are taken at once."""
        return [(out, warnings) for out, warnings, _ in self.map_many_keyed(profiles)]

    def map_many_keyed(
        self, profiles: Sequence[Profile]
    ) -> list[tuple[EncodedRecord | RunError, Sequence[FieldWarning], str | None]]:
        """:meth:`map_many`, with each record's de-duplication key (None for a skip): what
        the export's ledger knows a record by."""
        staged: list[tuple[EncodedRecord | RunError, Sequence[FieldWarning], str | None]] = []
        keys: list[str] = []
        for profile in profiles:
            out, key = self._build(profile)
            staged.append((out, self.warnings, key))
            if key is not None:
                keys.append(key)
        fresh = self._seen.add_many(keys)
        outcomes: list[tuple[EncodedRecord | RunError, Sequence[FieldWarning], str | None]] = []
        taken = iter(fresh)
        for out, warnings, key in staged:
            if key is not None and not next(taken):
                out, key = duplicate(out.profile_id), None
            outcomes.append((out, warnings, key))
        return outcomes

    def _build(self, profile: Profile) -> tuple[EncodedRecord | RunError, str | None]:
        """The record (and its de-duplication key, not taken yet), or why it is invalid."""
        values = self.values(profile)
        built, self.warnings = self.destination.build_record_with_warnings(values)
        if isinstance(built, Rejection):
            return _error(profile.id, built, values), None
        encoded = self.destination.encode_record(built)
        if len(encoded) > self._max_record_bytes:
            return RunError(
                code="RECORD_TOO_LARGE",
                message=f"the record encodes to {len(encoded)} bytes; with the request "
                f"envelope it cannot fit under the destination's limit of "
                f"{self.destination.limits.batch_max_bytes} bytes per request",
                profile_id=profile.id,
            ), None
        # orjson's output keeps its ~4 KB working buffer; a right-sized copy keeps a
        # full batch (40,000 records for Constant Contact) at a few MB instead of 160.
        record = EncodedRecord(profile_id=profile.id, encoded=memoryview(encoded).tobytes())
        return record, self.destination.record_dedupe_key(built)

    def map(self, profile: Profile) -> EncodedRecord | RunError:
        """The encoded record to send, or why the profile is skipped.

        A returned :class:`RunError` with code ``DUPLICATE`` means a record with the same
        key was already taken in this run; any other code means invalid (including
        ``RECORD_TOO_LARGE``: a record that could not fit in any request, checked before
        its key is taken so that it never shadows a valid duplicate).
        """
        out, key = self._build(profile)
        if key is not None and not self._seen.add_if_new(key):
            return duplicate(profile.id)
        return out


def duplicate(profile_id: str | None) -> RunError:
    return RunError(
        code="DUPLICATE",
        message="another profile in this run has the same "
        "destination key (e.g. the same e-mail address)",
        profile_id=profile_id,
    )


def _error(profile_id: str, rejection: Rejection, values: Mapping[str, Any]) -> RunError:
    # A destination may quote the bad value, stripped, escaped or cut short; the run's
    # error list must not hold it in any form (RunError then also drops quoted values
    # and anything e-mail-like, which covers the forms not seen here).
    return RunError(
        code=rejection.code,
        message=_without_values(rejection.message, values),
        profile_id=profile_id,
        field=rejection.field,
    )


SHORTEST_REDACTED = 3
"""Values shorter than this are left alone (a one-letter name would blank every word)."""
MATCHED_PREFIX = 8
"""A longer value is redacted wherever a stretch of at least this many of its leading
characters appears (a destination that cuts long values short quotes only a prefix)."""


def _without_values(message: str, values: Mapping[str, Any]) -> str:
    for value in values.values():
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            continue
        text = str(value)
        forms = {text, text.strip(), repr(text)[1:-1], repr(text.strip())[1:-1]}
        for form in forms:
            message = _without_form(message, form)
    return message


def _without_form(message: str, form: str) -> str:
    if len(form) < SHORTEST_REDACTED:
        return message
    if len(form) < MATCHED_PREFIX:
        return message.replace(form, REDACTED)
    head = form[:MATCHED_PREFIX]
    parts: list[str] = []
    start = 0
    while (found := message.find(head, start)) >= 0:
        end = found + MATCHED_PREFIX
        while end < len(message) and end - found < len(form) and message[end] == form[end - found]:
            end += 1
        parts += [message[start:found], REDACTED]
        start = end
    parts.append(message[start:])
    return "".join(parts)
