"""Turning profiles into destination records: field mapping, validation, de-duplication.

Every profile read ends as exactly one of: a record to send, skipped as
invalid, or skipped as a duplicate of a record already sent in this run. A
bounded sample of why profiles were skipped is kept, without the personal
values themselves (a rejected e-mail address must not land in logs or in the
run's error list): the profile id, the field, a code and a reason.
"""

from __future__ import annotations

import sqlite3
from array import array
from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
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
    """The de-duplication keys a run has taken: exact, and flat in memory however many.

    Every key is kept as a 128-bit fingerprint (two SipHash values: Python's ``hash`` of
    the key and of the key with a suffix; two keys collide with a probability around
    2**-127 per pair, i.e. never, and no personal data reaches the disk) in a private
    temporary SQLite file (SQLite's own, deleted when closed, no journal), which a
    thread of its own fills: SQLite's work there runs beside the mapping, without the GIL.

    In memory, a table of 32-bit tags (4 bytes a key, open addressing) answers first: a
    key whose tag is not there is new, which is almost every key. A key whose tag is
    there (a duplicate, or about one new key in ``2**32 / keys`` whose tag matches
    another's) is looked up in the file, once what was handed to the thread is written.
    A million keys cost 8 MB of tags; a set of a million e-mail strings costs ~110 MB.
    String hashes are salted per process, which is fine: the set lives within one.
    """

    def __init__(self, expected: int = 0) -> None:
        """``expected``: about how many keys will come (the table is made for them at
        once, growing only past them)."""
        # An empty name is SQLite's private, self-deleting temporary database on disk.
        self._db = sqlite3.connect("", isolation_level=None, check_same_thread=False)
        self._db.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
        self._db.execute("PRAGMA journal_mode = OFF")
        self._db.execute("PRAGMA synchronous = OFF")
        self._db.execute(
            "CREATE TABLE seen (high INTEGER NOT NULL, low INTEGER NOT NULL, "
            "PRIMARY KEY (high, low)) WITHOUT ROWID"
        )
        self._db.execute("BEGIN")  # never committed: the table dies with the run
        self._tags = array("I", bytes(4 * max(_FIRST_SLOTS, int(expected / _MOST_USED) + 1)))
        self._used = 0
        self._count = 0
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="segport-seen-keys")
        self._pending: deque[Future[None]] = deque()
        """Chunks handed to the writing thread, oldest first."""
        self._inserts: dict[int, str] = {}
        self._finds: dict[int, str] = {}

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        pair = (hash(key), hash(key + "\x1f"))
        if not self._tagged(_tag(pair)):
            return False
        self._flush()
        return self._db.execute(_FIND_KEY, pair).fetchone() is not None

    def add_if_new(self, key: str) -> bool:
        """Remember ``key``; False when it was already there."""
        return self.add_many([key])[0]

    def add_many(self, keys: Sequence[str]) -> list[bool]:
        """Remember each of ``keys`` in order; for each, False when it was there already
        (earlier, or earlier in ``keys``). At most :data:`MAX_KEYS_PER_STATEMENT` keys."""
        if not keys:
            return []
        pairs = [(hash(key), hash(key + "\x1f")) for key in keys]
        fresh = [True] * len(pairs)
        firsts: dict[tuple[int, int], int] = {}
        tagged: list[int] = []
        for position, pair in enumerate(pairs):
            if pair in firsts:
                fresh[position] = False  # earlier in this chunk
            else:
                firsts[pair] = position
                if not self._tag_if_new(_tag(pair)):
                    tagged.append(position)
        if tagged:
            # Seen before, or only a tag alike: the file knows (once it has every key).
            self._flush()
            asked = [pairs[position] for position in tagged]
            find = self._finds.get(len(asked))
            if find is None:
                find = self._finds[len(asked)] = _FIND_MANY.format(marks(len(asked)))
            found = set(self._db.execute(find, [part for pair in asked for part in pair]))
            for position, pair in zip(tagged, asked, strict=True):
                if pair in found:
                    fresh[position] = False
        new = [pair for pair, taken in zip(pairs, fresh, strict=True) if taken]
        self._count += len(new)
        if new:
            self._store(new)
        return fresh

    def _store(self, pairs: list[tuple[int, int]]) -> None:
        while len(self._pending) >= _MOST_PENDING:
            self._pending.popleft().result()
        insert = self._inserts.get(len(pairs))
        if insert is None:
            insert = self._inserts[len(pairs)] = _INSERT_MANY.format(marks(len(pairs)))
        parameters = [part for pair in pairs for part in pair]
        self._pending.append(self._writer.submit(self._write, insert, parameters))

    def _write(self, insert: str, parameters: list[int]) -> None:
        self._db.execute(insert, parameters)

    def _flush(self) -> None:
        while self._pending:
            self._pending.popleft().result()

    def _tagged(self, tag: int) -> bool:
        tags = self._tags
        size = len(tags)
        slot = tag % size
        while (found := tags[slot]) != 0:
            if found == tag:
                return True
            slot = slot + 1 if slot + 1 < size else 0
        return False

    def _tag_if_new(self, tag: int) -> bool:
        """Add ``tag``; False when the table had it already."""
        tags = self._tags
        size = len(tags)
        slot = tag % size
        while (found := tags[slot]) != 0:
            if found == tag:
                return False
            slot = slot + 1 if slot + 1 < size else 0
        tags[slot] = tag
        self._used += 1
        if self._used > size * _MOST_USED:
            self._grow()
        return True

    def _grow(self) -> None:
        old = self._tags
        tags = self._tags = array("I", bytes(4 * 2 * len(old)))
        size = len(tags)
        for tag in old:
            if tag:
                slot = tag % size
                while tags[slot] != 0:
                    slot = slot + 1 if slot + 1 < size else 0
                tags[slot] = tag

    def __len__(self) -> int:
        return self._count

    def close(self) -> None:
        try:
            self._flush()
        finally:
            self._writer.shutdown(wait=True)
            self._db.close()


def _tag(pair: tuple[int, int]) -> int:
    """A key's tag: 32 bits of its fingerprint, never 0 (0 marks an empty slot)."""
    return (pair[1] & 0xFFFFFFFF) or 1


def marks(count: int) -> str:
    return ",".join(["(?,?)"] * count)


_CACHE_KIB = 1024
"""The temporary file's page cache: only the writing thread and the rare look-ups use it."""
_FIRST_SLOTS = 1 << 16
"""Tag slots at least (256 KB)."""
_MOST_USED = 0.75
"""The share of the tag slots in use at most (linear probing stays short under it); the
table doubles past it."""
_MOST_PENDING = 64
"""Chunks handed to the writing thread and not yet written, at most (25,600 keys, about
2 MB): the thread falls behind while other work has the second core, and catches up."""
_FIND_KEY = "SELECT 1 FROM seen WHERE high = ? AND low = ?"
_INSERT_MANY = "INSERT OR IGNORE INTO seen (high, low) VALUES {}"
_FIND_MANY = "SELECT high, low FROM seen WHERE (high, low) IN (VALUES {})"
"""Row values: SQLite 3.15 or later."""
MAX_KEYS_PER_STATEMENT = 400
"""Keys per statement at most: two parameters each, within SQLite's default of 999."""


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
