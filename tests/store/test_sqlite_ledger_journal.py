"""The SQLite ledger's journal: what runs send is appended and merged into the entries in
key order once, yet every reader and every later change sees it as if written at once."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path
from typing import cast

import pytest

from service.domain import ExportRun
from service.store.base import LedgerChanges, LedgerDigest, LedgerReset
from service.store.sqlite import SQLiteStore
from service.store.sqlite.ledger import _digest_page, pack_sent
from tests.store.test_ledger import BASIS, all_entries, an_export, entry, finish, progress, running
from tests.store.test_ledger import sent as sent_entries


@pytest.fixture
def ledger_file(tmp_path: Path) -> Path:
    return tmp_path / "ledger.db"


@pytest.fixture
async def sqlite_store(ledger_file: Path) -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore(ledger_file, write_batch_size=10)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def table_rows(path: Path, table: str) -> int:
    with closing(sqlite3.connect(path)) as db:
        return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608


async def a_ledger_run(store: SQLiteStore) -> tuple[str, ExportRun]:
    """A new export and its first run, holding the export's ledger."""
    export_id = await an_export(store)
    run = await running(store, export_id)
    await store.start_ledger(export_id, run.id, BASIS, LedgerReset.KEEP)
    return export_id, run


async def test_sends_are_journalled_then_merged_once_settled(
    sqlite_store: SQLiteStore, ledger_file: Path
) -> None:
    store = sqlite_store
    export_id, run = await a_ledger_run(store)
    await progress(store, run, LedgerChanges(export_id, 1, sent=sent_entries((9, 90), (3, 30))))
    await progress(store, run, LedgerChanges(export_id, 1, sent=sent_entries((5, 50), (3, 31))))
    assert (
        table_rows(ledger_file, "ledger_journal"),
        table_rows(ledger_file, "ledger_entries"),
    ) == (4, 0)

    # Ending the run leaves the merge to settle_ledger, which the run calls once it is seen
    # to have ended (service/runs/lifecycle.py).
    await finish(store, run)
    assert table_rows(ledger_file, "ledger_journal") == 4
    await store.settle_ledger(export_id)
    assert (
        table_rows(ledger_file, "ledger_journal"),
        table_rows(ledger_file, "ledger_entries"),
    ) == (0, 3)
    # A key sent twice keeps what it was sent with last.
    assert await all_entries(store, export_id) == [entry(3, 31), entry(5, 50), entry(9, 90)]
    await store.settle_ledger(export_id)  # nothing left: nothing changes
    assert await all_entries(store, export_id) == [entry(3, 31), entry(5, 50), entry(9, 90)]


async def test_a_checkpoint_journals_every_entry_exactly(sqlite_store: SQLiteStore) -> None:
    """The packed form (one JSON statement per checkpoint) keeps the extreme 64-bit key ids
    and fingerprints, and sealed keys of every length, byte for byte."""
    store = sqlite_store
    export_id, run = await a_ledger_run(store)
    extremes = [-(2**63), -1, 0, 1, 2**63 - 1, 2**53 + 1, -(2**53) - 1]
    sent = [
        (key_id, bytes(range(position % 7)) + b"\x00\xff" * position, extremes[-1 - position])
        for position, key_id in enumerate(extremes)
    ]
    await progress(store, run, LedgerChanges(export_id, 1, sent=sent))
    found = [(e.key_id, e.sealed, e.fingerprint) for e in await all_entries(store, export_id)]
    assert found == sorted(sent)
    assert pack_sent([]) == (b"[]", b"")


async def test_readers_see_a_running_runs_sends(sqlite_store: SQLiteStore) -> None:
    store = sqlite_store
    export_id, run = await a_ledger_run(store)
    await progress(store, run, LedgerChanges(export_id, 1, sent=sent_entries((2, 20), (1, 10))))
    assert await store.count_ledger(export_id) == 2
    assert await store.ledger_entries(export_id, [1, 2, 7]) == {1: entry(1, 10), 2: entry(2, 20)}
    digest = [
        row async for page in store.iter_ledger_digest(export_id) for row in zip(*page, strict=True)
    ]
    assert [key_id for key_id, *_ in digest] == [1, 2]


async def test_other_changes_apply_after_the_sends_before_them(
    sqlite_store: SQLiteStore, ledger_file: Path
) -> None:
    store = sqlite_store
    export_id, run = await a_ledger_run(store)
    await progress(store, run, LedgerChanges(export_id, 1, sent=sent_entries((4, 40), (6, 60))))
    # Removing a key the journal still holds removes it: the journal is merged first.
    await progress(store, run, LedgerChanges(export_id, 1, removed=[4]))
    assert table_rows(ledger_file, "ledger_journal") == 0
    assert await all_entries(store, export_id) == [entry(6, 60)]


async def test_a_removed_export_takes_its_journal_with_it(
    sqlite_store: SQLiteStore, ledger_file: Path
) -> None:
    store = sqlite_store
    export_id, run = await a_ledger_run(store)
    await progress(store, run, LedgerChanges(export_id, 1, sent=sent_entries((8, 80))))
    await finish(store, run)
    second = await running(store, export_id)
    await store.start_ledger(export_id, second.id, BASIS, LedgerReset.KEEP)
    await progress(store, second, LedgerChanges(export_id, 2, sent=sent_entries((7, 70))))
    await store.delete_export(export_id)
    assert (
        table_rows(ledger_file, "ledger_journal"),
        table_rows(ledger_file, "ledger_entries"),
    ) == (0, 0)


class Answering:
    """A connection whose one statement answers the digest's three JSON arrays as given."""

    def __init__(self, *columns: str) -> None:
        self.columns = columns

    def execute(self, sql: str, parameters: object) -> Answering:
        return self

    def fetchone(self) -> tuple[str, ...]:
        return self.columns


def test_a_digest_page_is_in_key_order_whatever_order_the_aggregate_took() -> None:
    """SQLite does not promise an aggregate takes the subquery's order: a page that came
    out of order is put in key order, each entry's columns together (the next page starts
    after its last key id)."""
    conn = cast(sqlite3.Connection, Answering("[5,-3,2]", "[50,-30,20]", "[0,3,1]"))
    page = _digest_page(conn, number=1, after=None, limit=10)
    assert page == LedgerDigest([-3, 2, 5], [-30, 20, 50], [3, 1, 0])
    empty = cast(sqlite3.Connection, Answering("[]", "[]", "[]"))
    assert _digest_page(empty, number=1, after=5, limit=10) is None
