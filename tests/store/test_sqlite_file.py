"""SQLite adapter specifics: the file persists across opens, is in WAL mode, drops old states."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from service.domain import Profile, SyncMode, new_id, utcnow
from service.store.rules import OAUTH_STATE_GRACE
from service.store.sqlite import SQLiteStore
from service.store.sqlite.profiles import MAX_MERGED_SEGMENTS, _profiles
from tests.support.records import make_connection, make_export, make_oauth_state, make_segment


async def test_data_survives_closing_and_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "segport.db"
    segment = make_segment()
    store = SQLiteStore(path, write_batch_size=10)
    await store.open()
    await store.save_segment(segment)
    await store.upsert_profiles([Profile("p1", {"email": "a@x.io"}, [segment.id])])
    await store.close()

    reopened = SQLiteStore(path, write_batch_size=10)
    await reopened.open()
    await reopened.open()  # opening again is harmless
    try:
        assert await reopened.get_segment(segment.id) == segment
        assert await reopened.count_segment_members([segment.id]) == 1
        assert await reopened.profile_attribute_names() == ["email"]
    finally:
        await reopened.close()


async def test_the_database_file_uses_write_ahead_logging(tmp_path: Path) -> None:
    path = tmp_path / "segport.db"
    store = SQLiteStore(path, write_batch_size=10)
    await store.open()
    await store.close()

    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_a_write_batch_size_below_one_is_refused(tmp_path: Path) -> None:
    import pytest

    with pytest.raises(ValueError, match="write_batch_size"):
        SQLiteStore(tmp_path / "x.db", write_batch_size=0)


async def test_states_expired_longer_than_the_grace_period_go_when_a_state_is_saved(
    tmp_path: Path,
) -> None:
    now = utcnow()
    long_expired = make_oauth_state(
        new_id(), expires_at=now - OAUTH_STATE_GRACE - timedelta(minutes=1)
    )
    recently_expired = make_oauth_state(
        new_id(), expires_at=now - OAUTH_STATE_GRACE + timedelta(minutes=1)
    )
    store = SQLiteStore(tmp_path / "segport.db", write_batch_size=10)
    await store.open()
    try:
        await store.save_oauth_state(long_expired)
        await store.save_oauth_state(recently_expired)
        await store.save_oauth_state(make_oauth_state(new_id()))

        assert await store.consume_oauth_state(long_expired.state) is None
        assert await store.consume_oauth_state(recently_expired.state) == recently_expired
    finally:
        await store.close()


async def test_a_file_made_before_the_added_columns_gets_them_on_open(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as old:
        # The two tables as the first release made them.
        old.execute(
            "CREATE TABLE connections (id TEXT PRIMARY KEY, display_name TEXT NOT NULL, "
            "destination_type TEXT NOT NULL, usable_by TEXT NOT NULL, status TEXT NOT NULL, "
            "created_by TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, "
            "settings TEXT NOT NULL, credentials TEXT, account TEXT, export_user TEXT, "
            "data_privacy_accepted_by TEXT, data_privacy_accepted_at TEXT, status_message TEXT)"
        )
        old.execute(
            "CREATE TABLE oauth_states (state TEXT PRIMARY KEY, connection_id TEXT NOT NULL, "
            "user TEXT NOT NULL, code_verifier TEXT NOT NULL, redirect_uri TEXT NOT NULL, "
            "expires_at TEXT NOT NULL, created_at TEXT NOT NULL)"
        )
        old.execute(
            "INSERT INTO connections VALUES ('older', 'Older', 'constant_contact', 'ADMINS', "
            "'CONNECTED', NULL, '2024-01-02T03:04:05.000000+00:00', "
            "'2024-01-02T03:04:05.000000+00:00', '{}', NULL, NULL, NULL, NULL, NULL, NULL)"
        )
    old.close()
    store = SQLiteStore(path, write_batch_size=10)
    await store.open()
    try:
        older = await store.get_connection("older")
        assert older is not None
        # Made before ways to connect were recorded: none (its destination's first way).
        assert (older.display_name, older.auth_kind, older.account_id) == ("Older", None, None)
        connection = make_connection(account_id="fake0account", auth_kind="api_key")
        await store.save_connection(connection)
        assert await store.get_connection(connection.id) == connection
        state = replace(make_oauth_state(connection.id), allow_account_change=True)
        await store.save_oauth_state(state)
        assert await store.consume_oauth_state(state.state) == state
    finally:
        await store.close()


async def test_a_file_made_before_sync_modes_gains_the_column_and_its_exports_send_all(
    tmp_path: Path,
) -> None:
    path = tmp_path / "older.db"
    store = SQLiteStore(path, write_batch_size=10)
    await store.open()
    export = make_export()
    export.sync_mode = SyncMode.MIRROR
    await store.save_export(export)
    await store.close()
    with closing(sqlite3.connect(path)) as db:  # as the file was before sync modes
        db.execute("ALTER TABLE exports DROP COLUMN sync_mode")
        db.commit()

    reopened = SQLiteStore(path, write_batch_size=10)
    await reopened.open()
    try:
        stored = await reopened.get_export(export.id)
        assert stored is not None
        assert stored.sync_mode is SyncMode.SEND_ALL
        stored.sync_mode = SyncMode.SEND_CHANGES
        await reopened.save_export(stored)
        again = await reopened.get_export(export.id)
        assert again is not None
        assert again.sync_mode is SyncMode.SEND_CHANGES
    finally:
        await reopened.close()


async def test_members_of_over_two_hundred_segments_and_odd_ids_stream_exactly(
    tmp_path: Path,
) -> None:
    # Past MAX_MERGED_SEGMENTS the query scans memberships instead of merging ranges; an
    # id may hold any character, a NUL among them.
    segments = [new_id() for _ in range(MAX_MERGED_SEGMENTS + 1)]
    profiles = [
        Profile(f"p{n:02d}\x00{chr(0x4E00 + n)}", {"n": n}, segments[n::40]) for n in range(40)
    ]
    store = SQLiteStore(tmp_path / "segport.db", write_batch_size=10)
    await store.open()
    try:
        await store.upsert_profiles(profiles)
        batches = [b async for b in store.iter_segment_members(segments, batch_size=15)]
    finally:
        await store.close()

    assert [len(b) for b in batches] == [15, 15, 10]
    assert [p for b in batches for p in b] == sorted(profiles, key=lambda p: p.id)


def test_a_batch_whose_arrays_come_out_of_order_is_put_in_id_order() -> None:
    # SQLite does not promise that an aggregate takes its rows in the subquery's order.
    columns = ('["b", "c", "a"]', '[{"n": 2}, {"n": 3}, {"n": 1}]', '[["s"], [], ["s", "t"]]')

    assert _profiles(columns) == [
        Profile("a", {"n": 1}, ["s", "t"]),
        Profile("b", {"n": 2}, ["s"]),
        Profile("c", {"n": 3}, []),
    ]


def test_an_empty_batch_is_no_profiles() -> None:
    assert _profiles(("[]", None, None)) == []
