"""The SQLite schema: every table and index, made on open (idempotent).

Layout: plain columns for what is queried, JSON text (orjson) for nested
values, ISO-8601 UTC text for datetimes (fixed width, so text order is time
order; see :mod:`service.store.sqlite.codec`). Segment membership is its own
``(segment_id, profile_id)`` table, so reading the members of a segment after a
profile id is one index range. Every statement is ``IF NOT EXISTS``: opening an
existing file changes nothing.
"""

from __future__ import annotations

import sqlite3

SCHEMA = """
CREATE TABLE IF NOT EXISTS profiles (
    id TEXT PRIMARY KEY,
    attributes TEXT NOT NULL,
    segment_ids TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS segment_members (
    segment_id TEXT NOT NULL,
    profile_id TEXT NOT NULL,
    PRIMARY KEY (segment_id, profile_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS segment_members_by_profile ON segment_members (profile_id, segment_id);
CREATE TABLE IF NOT EXISTS profile_attributes (name TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS segments (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    name_folded TEXT NOT NULL,
    description TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS connections (
    id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    destination_type TEXT NOT NULL,
    usable_by TEXT NOT NULL,
    status TEXT NOT NULL,
    created_by TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    settings TEXT NOT NULL,
    credentials TEXT,
    account TEXT,
    export_user TEXT,
    data_privacy_accepted_by TEXT,
    data_privacy_accepted_at TEXT,
    status_message TEXT,
    account_id TEXT,
    auth_kind TEXT
);
CREATE TABLE IF NOT EXISTS exports (
    id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    display_name_folded TEXT NOT NULL,
    connection_id TEXT,
    destination_type TEXT NOT NULL,
    settings TEXT NOT NULL,
    field_mapping TEXT NOT NULL,
    segment_ids TEXT NOT NULL,
    schedule TEXT NOT NULL,
    schedule_mode TEXT NOT NULL,
    created_by TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    sync_mode TEXT NOT NULL DEFAULT 'SEND_ALL'
);
CREATE INDEX IF NOT EXISTS exports_by_connection ON exports (connection_id, id);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    export_id TEXT NOT NULL REFERENCES exports (id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    "trigger" TEXT NOT NULL,
    requested_by TEXT,
    queued_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    progress REAL NOT NULL,
    counts TEXT NOT NULL,
    message TEXT,
    errors TEXT NOT NULL,
    checkpoint TEXT NOT NULL,
    cancel_requested INTEGER NOT NULL,
    dedupe_key TEXT UNIQUE,
    attempt INTEGER NOT NULL,
    -- the export id while the run is QUEUED or RUNNING, NULL otherwise: the
    -- partial unique index below then allows one active run per export
    active_export_id TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS runs_one_active_per_export
    ON runs (active_export_id) WHERE active_export_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS runs_by_export ON runs (export_id, id);
CREATE TABLE IF NOT EXISTS oauth_states (
    state TEXT PRIMARY KEY,
    connection_id TEXT NOT NULL,
    user TEXT NOT NULL,
    code_verifier TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    allow_account_change INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS oauth_states_by_expiry ON oauth_states (expires_at);
CREATE TABLE IF NOT EXISTS key_values (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    expires_at TEXT
);
CREATE INDEX IF NOT EXISTS key_values_by_expiry ON key_values (expires_at)
    WHERE expires_at IS NOT NULL;
-- One ledger per export; its entries are keyed by a small number rather than the
-- export's 26-character id, which would otherwise be repeated in every entry.
CREATE TABLE IF NOT EXISTS ledgers (
    export_id TEXT PRIMARY KEY,
    ledger_no INTEGER NOT NULL UNIQUE,
    basis TEXT NOT NULL,
    run_id TEXT,
    run_no INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger_entries (
    ledger_no INTEGER NOT NULL,
    key_id INTEGER NOT NULL,
    sealed BLOB NOT NULL,
    fingerprint INTEGER NOT NULL,
    outcome INTEGER NOT NULL,
    run_no INTEGER NOT NULL,
    PRIMARY KEY (ledger_no, key_id)
) WITHOUT ROWID;
-- What runs sent, in arrival order, until it is settled into ledger_entries: a run's
-- checkpoint write appends here (sequential pages), and the whole journal is merged in
-- key order once (when the run ends, or before anything reads or changes the entries),
-- instead of every checkpoint rewriting pages all over the entries' B-tree.
CREATE TABLE IF NOT EXISTS ledger_journal (
    seq INTEGER PRIMARY KEY,
    ledger_no INTEGER NOT NULL,
    key_id INTEGER NOT NULL,
    sealed BLOB NOT NULL,
    fingerprint INTEGER NOT NULL,
    run_no INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_journal_by_ledger ON ledger_journal (ledger_no);
-- The list's members (key ids, 8 bytes each) as a run found them before it first sent a
-- record its ledger did not hold: what a resume of that run judges memberships by.
CREATE TABLE IF NOT EXISTS ledger_standings (
    ledger_no INTEGER PRIMARY KEY,
    run_no INTEGER NOT NULL,
    key_ids BLOB NOT NULL
);
"""

ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("connections", "account_id", "TEXT"),
    # Connections stored before auth kinds connect their destination's first way (NULL).
    ("connections", "auth_kind", "TEXT"),
    ("oauth_states", "allow_account_change", "INTEGER NOT NULL DEFAULT 0"),
    # Exports stored before sync modes keep sending everything.
    ("exports", "sync_mode", "TEXT NOT NULL DEFAULT 'SEND_ALL'"),
)
"""Columns added after their table was first released: (table, column, declaration)."""


MEMBER_COUNTS = """
CREATE TABLE segment_member_counts (
    segment_id TEXT PRIMARY KEY,
    members INTEGER NOT NULL
) WITHOUT ROWID
"""
"""Each segment's member count, kept by every profile write (see
:mod:`service.store.sqlite.profiles`) so a read is one row, never a count."""


def create_schema(conn: sqlite3.Connection) -> None:
    """Make whatever tables, columns and indexes the file lacks."""
    conn.executescript(SCHEMA)
    for table, column, declaration in ADDED_COLUMNS:
        existing = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column not in existing:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
    _add_member_counts(conn)


def _add_member_counts(conn: sqlite3.Connection) -> None:
    """Files made before the counts were kept get them, counted once, in the transaction that
    makes the table: another process writing profiles meanwhile waits for it (or, having
    made the table first, leaves nothing to do here)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        exists = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'segment_member_counts'"
        ).fetchone()
        if exists is None:
            conn.execute(MEMBER_COUNTS)
            conn.execute(
                "INSERT INTO segment_member_counts (segment_id, members) "
                "SELECT segment_id, COUNT(*) FROM segment_members GROUP BY segment_id"
            )
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
