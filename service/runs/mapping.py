"""Turning profiles into destination records: field mapping, validation, de-duplication.

Every profile read ends as exactly one of: a record to send, skipped as
invalid, or skipped as a duplicate of a record already sent in this run. A
bounded sample of why profiles were skipped is kept, without the personal
values themselves (a rejected e-mail address must not land in logs or in the
run's error list): the profile id, the field, a code and a reason.
"""

from __future__ import annotations

import sqlite3
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
    """The de-duplication keys a run has taken, in a private temporary SQLite file.

    Memory stays flat however many keys a run takes (a set of a million e-mail strings
    costs ~110 MB; this costs its 4 MB page cache). Keys are stored as 128-bit
    fingerprints (two SipHash values: Python's ``hash`` of the key and of the key with
    a suffix), so no personal data reaches the disk, and two different keys collide with
    a probability around 2**-127 per pair: never, in practice. String hashes are salted
    per process, which is fine: the set lives and is rebuilt within one process. The
    file is SQLite's own temporary database (deleted when closed), with no journal.

    Each key is stored with the number of the call that took it (``taken``), so that a
    chunk of keys costs one statement, one step, in the usual case of all of them new:
    ``INSERT ... RETURNING`` stepped once per row it returned, taking the GIL back each
    time, and during a run each of those waits could last a thread switch interval.
    """

    def __init__(self) -> None:
        # An empty name is SQLite's private, self-deleting temporary database on disk.
        self._db = sqlite3.connect("", isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA cache_size = -4096")
        self._db.execute("PRAGMA journal_mode = OFF")
        self._db.execute("PRAGMA synchronous = OFF")
        self._db.execute(
            "CREATE TABLE seen (high INTEGER NOT NULL, low INTEGER NOT NULL, "
            "taken INTEGER NOT NULL, PRIMARY KEY (high, low)) WITHOUT ROWID"
        )
        self._db.execute("BEGIN")  # never committed: the table dies with the run
        self._count = 0
        self._calls = 0
        self._inserts: dict[int, str] = {}
        self._finds: dict[int, str] = {}

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        found = self._db.execute(_FIND_KEY, (hash(key), hash(key + "\x1f"))).fetchone()
        return found is not None

    def add_if_new(self, key: str) -> bool:
        """Remember ``key``; False when it was already there."""
        return self.add_many([key])[0]

    def add_many(self, keys: Sequence[str]) -> list[bool]:
        """Remember each of ``keys`` in order; for each, False when it was there already
        (earlier, or earlier in ``keys``). One statement for them all when every key is
        new (the SQLite module lets go of the GIL around each statement's step)."""
        if not keys:
            return []
        self._calls += 1
        call = self._calls
        pairs = [(hash(key), hash(key + "\x1f")) for key in keys]
        insert = self._inserts.get(len(pairs))
        if insert is None:
            insert = self._inserts[len(pairs)] = _INSERT_MANY.format(
                rows=",".join(["(?,?)"] * len(pairs))
            )
        before = self._db.total_changes
        self._db.execute(insert, [call, *(part for pair in pairs for part in pair)])
        added = self._db.total_changes - before
        self._count += added
        if added == len(pairs):
            return [True] * len(pairs)
        # Some were there already (or came twice): the keys this call took are new.
        find = self._finds.get(len(pairs))
        if find is None:
            find = self._finds[len(pairs)] = _FIND_MANY.format(
                rows=",".join(["(?,?)"] * len(pairs))
            )
        rows = self._db.execute(find, [call, *(part for pair in pairs for part in pair)])
        new = {(high, low) for high, low in rows}
        fresh: list[bool] = []
        for pair in pairs:
            taken = pair in new
            if taken:
                new.discard(pair)  # only its first occurrence is new
            fresh.append(taken)
        return fresh

    def __len__(self) -> int:
        return self._count

    def close(self) -> None:
        self._db.close()


_FIND_KEY = "SELECT 1 FROM seen WHERE high = ? AND low = ?"
_INSERT_MANY = (
    "INSERT OR IGNORE INTO seen (high, low, taken) SELECT column1, column2, ? FROM (VALUES {rows})"
)
_FIND_MANY = "SELECT high, low FROM seen WHERE taken = ? AND (high, low) IN (VALUES {rows})"
"""The keys of a chunk that its own call took (SQLite 3.15 or later: row values)."""
MAX_KEYS_PER_STATEMENT = 400
"""Keys per statement at most: two parameters each (and one more), within SQLite's
default of 999."""


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
    ) -> None:
        self.destination = destination
        # (source attribute, target) pairs, looked up once per profile.
        self._pairs = [(m.source, m.target) for m in field_mapping]
        # A record must fit in a request on its own: envelope + record < the byte limit.
        self._max_record_bytes = destination.limits.batch_max_bytes - envelope_size - 1
        self._seen = SeenKeys()
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
        the de-duplication keys of a chunk are taken with one statement per
        :data:`MAX_KEYS_PER_STATEMENT` keys."""
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
        fresh: list[bool] = []
        for start in range(0, len(keys), MAX_KEYS_PER_STATEMENT):
            fresh += self._seen.add_many(keys[start : start + MAX_KEYS_PER_STATEMENT])
        outcomes: list[tuple[EncodedRecord | RunError, Sequence[FieldWarning], str | None]] = []
        taken = iter(fresh)
        for out, warnings, key in staged:
            if key is not None and not next(taken):
                out, key = _duplicate(out.profile_id), None
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
            return _duplicate(profile.id)
        return out


def _duplicate(profile_id: str | None) -> RunError:
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
