"""Export ledgers on SQLite: the ``ledgers`` and ``ledger_entries`` tables.

Changes to entries come with a run's progress (:func:`apply_ledger_changes`, called by
``record_run_progress`` inside its transaction), so they commit with the checkpoint
or not at all. What a run sent is appended to ``ledger_journal`` in that transaction
and merged into the entries in key order by :func:`settle_ledger`: once the run has
ended (``Store.settle_ledger``), before any other kind of change, and before anything
reads the entries. Key ids are keyed hashes, so writing each checkpoint's entries
straight into the B-tree rewrote pages all over it at every checkpoint (a
1,000,000-entry first run took twice its floor); appended and merged once, the same
entries cost one ordered pass.

A checkpoint's entries reach SQLite as one statement (:func:`pack_sent`): their key ids,
fingerprints and where each sealed key lies in one blob, as a JSON array that SQLite's
``json_each`` unrolls. ``executemany`` bound each row in Python and took the GIL back
after each row's step, so the writer thread competed with the run's mapping for it
40,000 times per checkpoint; one statement runs entirely inside SQLite, without the GIL.
"""

# Every statement is built from fixed text and placeholder marks; values are parameters.
# ruff: noqa: S608

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Mapping, Sequence
from functools import partial
from itertools import accumulate
from typing import Any, NamedTuple

import orjson

from service.store._records import pack_key_ids, unpack_key_ids
from service.store.base import (
    LedgerChanges,
    LedgerDigest,
    LedgerEntry,
    LedgerOutcome,
    LedgerReset,
    LedgerState,
)
from service.store.sqlite.database import SQLiteDatabase
from service.store.sqlite.queries import in_first_column_order, marks

LOOKUP_CHUNK = 900
"""Keys per ``IN (...)`` query (under SQLite's default limit of 999 parameters)."""


class SQLiteLedger:
    """The ledger part of :class:`~service.store.sqlite.SQLiteStore`."""

    _db: SQLiteDatabase

    async def settle_ledger(self, export_id: str) -> None:
        """Merge what runs of ``export_id`` journalled into its entries, if anything."""

        def pending(conn: sqlite3.Connection) -> bool:
            number = _number(conn, export_id)
            return number is not None and _has_journal(conn, number)

        if await self._db.read(pending):
            await self._db.write(lambda conn: settle_ledger(conn, export_id))

    async def ledger_state(self, export_id: str) -> LedgerState | None:
        return await self._db.read(lambda conn: _state(conn, export_id))

    async def start_ledger(
        self, export_id: str, run_id: str, basis: Mapping[str, Any], reset: LedgerReset
    ) -> LedgerState:
        def start(conn: sqlite3.Connection) -> LedgerState:
            row = conn.execute(
                "SELECT ledger_no, run_id, run_no FROM ledgers WHERE export_id = ?", (export_id,)
            ).fetchone()
            text = orjson.dumps(dict(basis), option=orjson.OPT_SORT_KEYS).decode()
            if row is None:
                number = conn.execute(
                    "SELECT COALESCE(MAX(ledger_no), 0) + 1 FROM ledgers"
                ).fetchone()[0]
                conn.execute(
                    "INSERT INTO ledgers (export_id, ledger_no, basis, run_id, run_no) "
                    "VALUES (?, ?, ?, ?, 1)",
                    (export_id, number, text, run_id),
                )
                return LedgerState(dict(basis), run_id, 1)
            number, last_run, run_no = int(row[0]), row[1], int(row[2])
            _settle(conn, number)
            if last_run == run_id:
                return LedgerState(_basis(conn, export_id), run_id, run_no)
            _forget_standing(conn, export_id)
            if reset is LedgerReset.CLEAR:
                conn.execute("DELETE FROM ledger_entries WHERE ledger_no = ?", (number,))
            elif reset is LedgerReset.FORGET_FINGERPRINTS:
                conn.execute(
                    "UPDATE ledger_entries SET fingerprint = 0 WHERE ledger_no = ?", (number,)
                )
            conn.execute(
                "UPDATE ledgers SET basis = ?, run_id = ?, run_no = ? WHERE export_id = ?",
                (text, run_id, run_no + 1, export_id),
            )
            return LedgerState(dict(basis), run_id, run_no + 1)

        return await self._db.write(start)

    async def ledger_entries(
        self, export_id: str, key_ids: Sequence[int]
    ) -> dict[int, LedgerEntry]:
        if not key_ids:
            return {}
        await self.settle_ledger(export_id)

        def lookup(conn: sqlite3.Connection) -> dict[int, LedgerEntry]:
            number = _number(conn, export_id)
            found: dict[int, LedgerEntry] = {}
            if number is None:
                return found
            for start in range(0, len(key_ids), LOOKUP_CHUNK):
                chunk = list(key_ids[start : start + LOOKUP_CHUNK])
                rows = conn.execute(
                    f"SELECT {_COLUMNS} FROM ledger_entries "
                    f"WHERE ledger_no = ? AND key_id IN ({marks(len(chunk))})",
                    (number, *chunk),
                )
                for row in rows:
                    entry = _entry(row)
                    found[entry.key_id] = entry
            return found

        return await self._db.read(lookup)

    async def iter_ledger(
        self, export_id: str, *, after_key_id: int | None = None, batch_size: int = 1000
    ) -> AsyncIterator[list[LedgerEntry]]:
        await self.settle_ledger(export_id)
        number = await self._db.read(lambda conn: _number(conn, export_id))
        if number is None:
            return
        after = after_key_id
        while True:

            def page(conn: sqlite3.Connection, after: int | None = after) -> list[LedgerEntry]:
                # The first page starts at the smallest signed 64-bit value, included.
                since = "key_id >= ?" if after is None else "key_id > ?"
                rows = conn.execute(
                    f"SELECT {_COLUMNS} FROM ledger_entries "
                    f"WHERE ledger_no = ? AND {since} ORDER BY key_id LIMIT ?",
                    (number, -(2**63) if after is None else after, batch_size),
                )
                return [_entry(row) for row in rows]

            entries = await self._db.read(page)
            if not entries:
                return
            yield entries
            if len(entries) < batch_size:
                return
            after = entries[-1].key_id

    async def iter_ledger_digest(
        self, export_id: str, *, batch_size: int = 10_000
    ) -> AsyncIterator[LedgerDigest]:
        await self.settle_ledger(export_id)
        number = await self._db.read(lambda conn: _number(conn, export_id))
        if number is None:
            return
        after: int | None = None
        while True:
            page = await self._db.read(
                partial(_digest_page, number=number, after=after, limit=batch_size)
            )
            if page is None:
                return
            yield page
            if len(page.key_ids) < batch_size:
                return
            after = page.key_ids[-1]

    async def count_ledger(self, export_id: str) -> int:
        await self.settle_ledger(export_id)

        def count(conn: sqlite3.Connection) -> int:
            number = _number(conn, export_id)
            if number is None:
                return 0
            sql = "SELECT COUNT(*) FROM ledger_entries WHERE ledger_no = ?"
            return int(conn.execute(sql, (number,)).fetchone()[0])

        return await self._db.read(count)

    async def keep_list_standing(self, export_id: str, run_no: int, key_ids: Sequence[int]) -> None:
        data = pack_key_ids(key_ids)

        def keep(conn: sqlite3.Connection) -> None:
            number = _number(conn, export_id)
            if number is None:
                raise ValueError(f"export {export_id!r} has no ledger to keep a standing for")
            conn.execute(
                "INSERT OR REPLACE INTO ledger_standings (ledger_no, run_no, key_ids) "
                "VALUES (?, ?, ?)",
                (number, run_no, data),
            )

        await self._db.write(keep)

    async def list_standing(self, export_id: str, run_no: int) -> list[int] | None:
        def read(conn: sqlite3.Connection) -> bytes | None:
            row = conn.execute(
                "SELECT s.key_ids FROM ledger_standings s JOIN ledgers l USING (ledger_no) "
                "WHERE l.export_id = ? AND s.run_no = ?",
                (export_id, run_no),
            ).fetchone()
            return None if row is None else bytes(row[0])

        data = await self._db.read(read)
        return None if data is None else unpack_key_ids(data)


def _forget_standing(conn: sqlite3.Connection, export_id: str) -> None:
    conn.execute(
        "DELETE FROM ledger_standings WHERE ledger_no = "
        "(SELECT ledger_no FROM ledgers WHERE export_id = ?)",
        (export_id,),
    )


class PackedSent(NamedTuple):
    """What a checkpoint sent, as :func:`pack_sent` hands it to SQLite."""

    entries: bytes
    """A JSON array of ``[key id, fingerprint, start, length]``, one per entry (``start``
    counts from 1, as SQLite's ``substr`` does)."""
    sealed: bytes
    """Every entry's sealed key, one after another."""


def pack_sent(sent: Sequence[tuple[int, bytes, int]]) -> PackedSent:
    """``sent`` (key id, sealed key, fingerprint) packed for one ``json_each`` statement;
    every step iterates in C (no Python code runs per entry)."""
    if not sent:
        return PackedSent(b"[]", b"")
    key_ids, sealed, fingerprints = zip(*sent, strict=True)
    lengths = list(map(len, sealed))
    starts = accumulate(lengths[:-1], initial=1)
    entries = orjson.dumps(list(zip(key_ids, fingerprints, starts, lengths, strict=True)))
    return PackedSent(entries, b"".join(sealed))


_JOURNAL_PACKED = (
    "INSERT INTO ledger_journal (ledger_no, key_id, sealed, fingerprint, run_no) "
    "SELECT :ledger_no, value ->> 0, substr(:sealed, value ->> 2, value ->> 3), value ->> 1, "
    ":run_no FROM json_each(:entries)"
)
"""Journals a packed checkpoint. Within one checkpoint no key comes twice (a run takes a key
once), so the order of its rows does not matter; checkpoints keep theirs (``seq``)."""


def apply_ledger_changes(
    conn: sqlite3.Connection, changes: LedgerChanges, packed: PackedSent | None = None
) -> None:
    """Apply ``changes`` within the caller's transaction: what was sent is journalled (and
    merged later, in key order); any other change first settles the journal, so that
    every change lands in the order the runs made them. ``packed`` is
    :func:`pack_sent` of ``changes.sent`` when the caller made it already (off the
    writer thread)."""
    number = _number(conn, changes.export_id)
    if number is None:
        return  # the export (and its ledger) was removed meanwhile
    run_no = changes.run_no
    if changes.only_sent:
        if changes.sent:
            packed = packed or pack_sent(changes.sent)
            conn.execute(
                _JOURNAL_PACKED,
                {"ledger_no": number, "run_no": run_no, **packed._asdict()},
            )
        return
    _settle(conn, number)
    if changes.forget_run:
        conn.execute(
            "UPDATE ledger_entries SET fingerprint = 0 WHERE ledger_no = ? AND run_no = ?",
            (number, run_no),
        )
    conn.executemany(
        _UPSERT_SENT + "VALUES (?, ?, ?, ?, ?, ?) " + _ON_CONFLICT,
        [
            (number, key_id, sealed, fp, LedgerOutcome.SENT.value, run_no)
            for key_id, sealed, fp in sorted(changes.sent)
        ],
    )
    conn.executemany(
        "UPDATE ledger_entries SET outcome = ?, run_no = ? WHERE ledger_no = ? AND key_id = ?",
        [(LedgerOutcome.REMOVAL_FAILED.value, run_no, number, k) for k in changes.removal_failed],
    )
    conn.executemany(
        "UPDATE ledger_entries SET outcome = ? WHERE ledger_no = ? AND key_id = ?",
        [(outcome.value, number, k) for k, outcome in changes.marked],
    )
    conn.executemany(
        "DELETE FROM ledger_entries WHERE ledger_no = ? AND key_id = ?",
        [(number, key_id) for key_id in changes.removed],
    )


def settle_ledger(conn: sqlite3.Connection, export_id: str) -> None:
    """Merge the journal of ``export_id``'s ledger into its entries (caller's transaction)."""
    number = _number(conn, export_id)
    if number is not None:
        _settle(conn, number)


_UPSERT_SENT = (
    "INSERT INTO ledger_entries (ledger_no, key_id, sealed, fingerprint, outcome, run_no) "
)
_ON_CONFLICT = (
    "ON CONFLICT (ledger_no, key_id) DO UPDATE SET "
    "sealed = excluded.sealed, fingerprint = excluded.fingerprint, "
    "outcome = excluded.outcome, run_no = excluded.run_no"
)


def _has_journal(conn: sqlite3.Connection, number: int) -> bool:
    sql = "SELECT EXISTS (SELECT 1 FROM ledger_journal WHERE ledger_no = ?)"
    return bool(conn.execute(sql, (number,)).fetchone()[0])


SETTLE_CACHE_KIB = 4096
"""The writer's page cache while it merges a journal. SQLite's sorter holds up to a page
cache's worth in memory: with the writer's 16 MiB, merging a 1,000,000-entry journal
raised the process's peak by 17 MB; with 4 MiB, by nothing, and it took no longer."""


def _settle(conn: sqlite3.Connection, number: int) -> None:
    if not _has_journal(conn, number):
        return
    cache_size = int(conn.execute("PRAGMA cache_size").fetchone()[0])
    conn.execute(f"PRAGMA cache_size = -{SETTLE_CACHE_KIB}")
    try:
        # In key order, and for one key in the order it was journalled (a later send wins).
        conn.execute(
            _UPSERT_SENT + "SELECT ledger_no, key_id, sealed, fingerprint, ?, run_no "
            "FROM ledger_journal WHERE ledger_no = ? ORDER BY key_id, seq " + _ON_CONFLICT,
            (LedgerOutcome.SENT.value, number),
        )
        conn.execute("DELETE FROM ledger_journal WHERE ledger_no = ?", (number,))
    finally:
        conn.execute(f"PRAGMA cache_size = {cache_size}")


_DIGEST_PAGE = (
    "SELECT json_group_array(key_id), json_group_array(fingerprint), "
    "json_group_array(outcome) FROM (SELECT key_id, fingerprint, outcome FROM ledger_entries "
    "WHERE ledger_no = ? AND key_id {} ? ORDER BY key_id LIMIT ?)"
)
"""A page of the digest as three JSON arrays: one step of the statement, so the reader
thread runs it without the GIL (row by row it took the GIL back for every row), and
three ``orjson`` parses instead of a tuple per row."""


def _digest_page(
    conn: sqlite3.Connection, number: int, after: int | None, limit: int
) -> LedgerDigest | None:
    since, start = (">=", -(2**63)) if after is None else (">", after)
    key_ids, fingerprints, outcomes = conn.execute(
        _DIGEST_PAGE.format(since), (number, start, limit)
    ).fetchone()
    # The page (and where the next one starts) must be in key order.
    page = LedgerDigest(
        *in_first_column_order(
            orjson.loads(key_ids), orjson.loads(fingerprints), orjson.loads(outcomes)
        )
    )
    return page if page.key_ids else None


def delete_ledger(conn: sqlite3.Connection, export_id: str) -> None:
    number = _number(conn, export_id)
    if number is not None:
        conn.execute("DELETE FROM ledger_journal WHERE ledger_no = ?", (number,))
        conn.execute("DELETE FROM ledger_standings WHERE ledger_no = ?", (number,))
        conn.execute("DELETE FROM ledger_entries WHERE ledger_no = ?", (number,))
        conn.execute("DELETE FROM ledgers WHERE export_id = ?", (export_id,))


_COLUMNS = "key_id, sealed, fingerprint, outcome, run_no"


_OUTCOMES = {outcome.value: outcome for outcome in LedgerOutcome}


def _entry(row: Sequence[Any]) -> LedgerEntry:
    key_id, sealed, fingerprint, outcome, run_no = row
    return LedgerEntry(key_id, sealed, fingerprint, _OUTCOMES[outcome], run_no)


def _number(conn: sqlite3.Connection, export_id: str) -> int | None:
    row = conn.execute("SELECT ledger_no FROM ledgers WHERE export_id = ?", (export_id,)).fetchone()
    return None if row is None else int(row[0])


def _basis(conn: sqlite3.Connection, export_id: str) -> dict[str, Any]:
    row = conn.execute("SELECT basis FROM ledgers WHERE export_id = ?", (export_id,)).fetchone()
    return {} if row is None else dict(orjson.loads(row[0]))


def _state(conn: sqlite3.Connection, export_id: str) -> LedgerState | None:
    row = conn.execute(
        "SELECT basis, run_id, run_no FROM ledgers WHERE export_id = ?", (export_id,)
    ).fetchone()
    if row is None:
        return None
    return LedgerState(dict(orjson.loads(row[0])), row[1], int(row[2]))
