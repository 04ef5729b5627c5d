"""The embedded store: one SQLite file (WAL), for ``segport serve`` and ``segport demo``.

The API and the in-process run runner share one :class:`SQLiteStore` from one
event loop. Each of its two connections lives on its own thread: a *writer*
through which every write transaction passes (so writes never interleave) and
a *reader* for queries (WAL lets it read while the writer writes). Every store
method hands one whole function to a thread, so a transaction never spans an
``await`` and never sees another coroutine's half-done work.

Layout: plain columns for what is queried, JSON text (orjson) for nested
values, ISO-8601 UTC text for datetimes (fixed width, so text order is time
order). Segment membership is its own ``(segment_id, profile_id)`` table, so
reading the members of a segment after a profile id is one index range.
"""

# SQL text here is assembled only from this module's own table and column names
# and "?" placeholders; every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import orjson

from service.domain import (
    ACTIVE_RUN_STATUSES,
    RUN_ERROR_SAMPLE_SIZE,
    Connection,
    ConnectionUsableBy,
    Export,
    ExportRun,
    ExportRunStatus,
    OAuthState,
    Profile,
    RefreshSchedule,
    ScheduleMode,
    Segment,
    utcnow,
)
from service.store import _records as rec
from service.store._paging import check_first, page_from_rows, unique_in_order
from service.store.base import ActiveRunExists, DuplicateRun, NotFound, Page, RunProgress

T = TypeVar("T")

_SCHEMA = """
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
    status_message TEXT
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
    updated_at TEXT NOT NULL
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
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS oauth_states_by_expiry ON oauth_states (expires_at);
CREATE TABLE IF NOT EXISTS key_values (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    expires_at TEXT
);
CREATE INDEX IF NOT EXISTS key_values_by_expiry ON key_values (expires_at)
    WHERE expires_at IS NOT NULL;
"""

# Which columns of each table hold JSON text, ISO datetimes or 0/1 booleans.
_JSON_COLUMNS = frozenset(
    {"settings", "field_mapping", "segment_ids", "schedule", "counts", "errors", "checkpoint"}
)
_DATETIME_COLUMNS = frozenset(
    {
        "created_at",
        "updated_at",
        "data_privacy_accepted_at",
        "queued_at",
        "started_at",
        "finished_at",
        "expires_at",
    }
)
_BOOL_COLUMNS = frozenset({"cancel_requested"})

_REFRESH_SCHEDULE_KEY = "refresh_schedule"
_CLAIM_PREFIX = "claim:"
# Expired OAuth states are kept a day, so a late callback is told "expired"
# rather than "unknown"; MongoDB's TTL index uses the same delay.
_OAUTH_STATE_GRACE_SQL = "-1 day"
# SQLite caps compound SELECTs at 500 terms; above this many segments the
# member query scans memberships in profile-id order instead of merging ranges.
_MAX_MERGED_SEGMENTS = 200


def _iso(value: datetime) -> str:
    return rec.as_utc(value).isoformat(timespec="microseconds")


def _encode_value(column: str, value: Any) -> Any:
    if value is None:
        return None
    if column in _JSON_COLUMNS:
        return orjson.dumps(value).decode()
    if column in _DATETIME_COLUMNS:
        return _iso(value)
    if column in _BOOL_COLUMNS:
        return int(bool(value))
    return value


def _encode(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {column: _encode_value(column, value) for column, value in doc.items()}


def _decode(row: Mapping[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for column, value in row.items():
        if value is not None:
            if column in _JSON_COLUMNS:
                value = orjson.loads(value)
            elif column in _DATETIME_COLUMNS:
                value = datetime.fromisoformat(value)
            elif column in _BOOL_COLUMNS:
                value = bool(value)
        doc[column] = value
    return doc


def _fetch_docs(
    conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()
) -> list[dict[str, Any]]:
    cursor = conn.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [_decode(dict(zip(names, row, strict=True))) for row in cursor.fetchall()]


def _fetch_doc(
    conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()
) -> dict[str, Any] | None:
    docs = _fetch_docs(conn, sql, params)
    return docs[0] if docs else None


def _upsert_sql(table: str, columns: Iterable[str], key: str = "id") -> str:
    names = list(columns)
    quoted = ", ".join(f'"{n}"' for n in names)
    placeholders = ", ".join(f":{n}" for n in names)
    updates = ", ".join(f'"{n}" = excluded."{n}"' for n in names if n != key)
    return (
        f"INSERT INTO {table} ({quoted}) VALUES ({placeholders}) "
        f"ON CONFLICT({key}) DO UPDATE SET {updates}"
    )


def _marks(count: int) -> str:
    return ", ".join("?" * count)


def _active_export_id(status: str, export_id: str) -> str | None:
    return export_id if ExportRunStatus(status) in ACTIVE_RUN_STATUSES else None


def _run_row(run: ExportRun) -> dict[str, Any]:
    row = _encode(rec.run_to_doc(run))
    row["active_export_id"] = _active_export_id(row["status"], row["export_id"])
    return row


def _run_from_row(doc: dict[str, Any]) -> ExportRun:
    doc.pop("active_export_id", None)
    return rec.run_from_doc(doc)


class _DatabaseThread:
    """One sqlite3 connection, used only from its own thread."""

    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._conn: sqlite3.Connection | None = None

    async def open(self, path: Path, *, read_only: bool) -> None:
        def connect() -> None:
            # isolation_level=None: transactions are our own BEGIN .. COMMIT.
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 10000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            if read_only:
                # Reads are mostly long sequential range scans (a run streaming a segment):
                # a big page cache would not be reused, only fill up as the segment grows;
                # the operating system's file cache serves re-reads.
                conn.execute("PRAGMA cache_size = -8192")  # 8 MiB
                conn.execute("PRAGMA query_only = ON")
            else:
                # Bulk upserts touch index pages all over the file: keep them in memory.
                conn.execute("PRAGMA cache_size = -65536")  # 64 MiB
            self._conn = conn

        await asyncio.get_running_loop().run_in_executor(self._executor, connect)

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def job() -> T:
            if self._conn is None:
                raise RuntimeError("the SQLite store is not open (call open() first)")
            return fn(self._conn)

        return await asyncio.get_running_loop().run_in_executor(self._executor, job)

    async def close(self) -> None:
        def disconnect() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._executor, disconnect)
        self._executor.shutdown(wait=True)


def _in_transaction(fn: Callable[[sqlite3.Connection], T]) -> Callable[[sqlite3.Connection], T]:
    """``fn`` wrapped in BEGIN IMMEDIATE .. COMMIT (ROLLBACK on any error)."""

    def run(conn: sqlite3.Connection) -> T:
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    return run


def _in_snapshot(fn: Callable[[sqlite3.Connection], T]) -> Callable[[sqlite3.Connection], T]:
    """``fn`` inside one read transaction, so a page and its total agree."""

    def run(conn: sqlite3.Connection) -> T:
        conn.execute("BEGIN")
        try:
            return fn(conn)
        finally:
            conn.execute("COMMIT")

    return run


class SQLiteStore:
    """The :class:`~service.store.base.Store` on one SQLite file."""

    def __init__(self, path: Path, *, write_batch_size: int) -> None:
        if write_batch_size < 1:
            raise ValueError(f"write_batch_size must be at least 1, got {write_batch_size}")
        self._path = Path(path)
        self._write_batch_size = write_batch_size
        self._writer = _DatabaseThread("segport-sqlite-writer")
        self._reader = _DatabaseThread("segport-sqlite-reader")
        self._opened = False

    # -- lifecycle -------------------------------------------------------
    async def open(self) -> None:
        if self._opened:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        await self._writer.open(self._path, read_only=False)
        await self._writer.call(lambda conn: conn.executescript(_SCHEMA))
        await self._reader.open(self._path, read_only=True)
        self._opened = True

    async def close(self) -> None:
        if not self._opened:
            return
        self._opened = False
        await self._reader.close()
        await self._writer.close()

    async def ping(self) -> None:
        await self._read(lambda conn: conn.execute("SELECT 1").fetchone())

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._reader.call(fn)

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._writer.call(_in_transaction(fn))

    # -- segments --------------------------------------------------------
    async def save_segment(self, segment: Segment) -> None:
        row = _encode(rec.segment_to_doc(segment))
        row["name_folded"] = segment.name.casefold()
        sql = _upsert_sql("segments", row)

        def save(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(sql, row)
            except sqlite3.IntegrityError as exc:
                raise ValueError(
                    f"segment name {segment.name!r} is already used by another segment"
                ) from exc

        await self._write(save)

    async def get_segment(self, segment_id: str) -> Segment | None:
        doc = await self._read(
            lambda conn: _fetch_doc(conn, "SELECT * FROM segments WHERE id = ?", (segment_id,))
        )
        return None if doc is None else _segment(doc)

    async def get_segments(self, segment_ids: Sequence[str]) -> list[Segment]:
        ids = unique_in_order(segment_ids)
        if not ids:
            return []
        docs = await self._read(
            lambda conn: _fetch_docs(
                conn, f"SELECT * FROM segments WHERE id IN ({_marks(len(ids))})", ids
            )
        )
        by_id = {doc["id"]: _segment(doc) for doc in docs}
        return [by_id[i] for i in ids if i in by_id]

    async def list_segments(
        self, first: int, after: str | None = None, search: str | None = None
    ) -> Page[Segment]:
        check_first(first)
        where, params = ["1 = 1"], []
        if search:
            where.append("instr(name_folded, ?) > 0")
            params.append(search.casefold())
        docs, total = await self._read(
            _in_snapshot(lambda conn: _page_query(conn, "segments", where, params, first, after))
        )
        return page_from_rows([_segment(d) for d in docs], first, total, after)

    async def count_segment_members(self, segment_ids: Sequence[str]) -> int:
        ids = unique_in_order(segment_ids)
        if not ids:
            return 0
        sql = (
            "SELECT COUNT(*) FROM segment_members WHERE segment_id = ?"
            if len(ids) == 1
            else "SELECT COUNT(DISTINCT profile_id) FROM segment_members "
            f"WHERE segment_id IN ({_marks(len(ids))})"
        )
        count = await self._read(lambda conn: conn.execute(sql, ids).fetchone()[0])
        return int(count)

    # -- profiles --------------------------------------------------------
    async def upsert_profiles(self, profiles: Sequence[Profile]) -> int:
        checked = rec.checked_profiles(profiles)
        for start in range(0, len(checked), self._write_batch_size):
            batch = checked[start : start + self._write_batch_size]
            await self._write(partial(_write_profiles, batch=batch))
        return len(checked)

    async def get_profile(self, profile_id: str) -> Profile | None:
        row = await self._read(
            lambda conn: conn.execute(
                "SELECT id, attributes, segment_ids FROM profiles WHERE id = ?", (profile_id,)
            ).fetchone()
        )
        if row is None:
            return None
        return Profile(row[0], orjson.loads(row[1]), orjson.loads(row[2]))

    async def profile_attribute_names(self) -> list[str]:
        rows = await self._read(
            lambda conn: conn.execute(
                "SELECT name FROM profile_attributes ORDER BY name"
            ).fetchall()
        )
        return [r[0] for r in rows]

    async def iter_segment_members(
        self,
        segment_ids: Sequence[str],
        *,
        after_profile_id: str | None = None,
        batch_size: int = 5000,
    ) -> AsyncIterator[list[Profile]]:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        ids = unique_in_order(segment_ids)
        if not ids:
            return
        sql = _members_sql(len(ids))
        after = after_profile_id
        while True:
            params = _members_params(ids, after, batch_size)
            batch = await self._read(partial(_fetch_profiles, sql=sql, params=params))
            if batch:
                yield batch
            if len(batch) < batch_size:
                return
            after = batch[-1].id

    # -- connections -----------------------------------------------------
    async def save_connection(self, connection: Connection) -> None:
        row = _encode(rec.connection_to_doc(connection))
        sql = _upsert_sql("connections", row)
        await self._write(lambda conn: conn.execute(sql, row))

    async def get_connection(self, connection_id: str) -> Connection | None:
        doc = await self._read(
            lambda conn: _fetch_doc(
                conn, "SELECT * FROM connections WHERE id = ?", (connection_id,)
            )
        )
        return None if doc is None else rec.connection_from_doc(doc)

    async def list_connections(
        self,
        first: int,
        after: str | None = None,
        usable_by: Sequence[ConnectionUsableBy] | None = None,
    ) -> Page[Connection]:
        check_first(first)
        where, params = ["1 = 1"], []
        if usable_by is not None:
            values = [ConnectionUsableBy(u).value for u in usable_by]
            where.append(f"usable_by IN ({_marks(len(values))})" if values else "0 = 1")
            params.extend(values)
        docs, total = await self._read(
            _in_snapshot(lambda conn: _page_query(conn, "connections", where, params, first, after))
        )
        return page_from_rows([rec.connection_from_doc(d) for d in docs], first, total, after)

    async def delete_connection(self, connection_id: str) -> bool:
        deleted = await self._write(
            lambda conn: (
                conn.execute("DELETE FROM connections WHERE id = ?", (connection_id,)).rowcount
            )
        )
        return bool(deleted)

    # -- exports ---------------------------------------------------------
    async def save_export(self, export: Export) -> None:
        row = _encode(rec.export_to_doc(export))
        row["display_name_folded"] = export.display_name.casefold()
        row["schedule_mode"] = export.schedule.mode.value
        sql = _upsert_sql("exports", row)
        await self._write(lambda conn: conn.execute(sql, row))

    async def get_export(self, export_id: str) -> Export | None:
        doc = await self._read(
            lambda conn: _fetch_doc(conn, "SELECT * FROM exports WHERE id = ?", (export_id,))
        )
        return None if doc is None else _export(doc)

    async def get_exports(self, export_ids: Sequence[str]) -> list[Export]:
        ids = unique_in_order(export_ids)
        if not ids:
            return []
        docs = await self._read(
            lambda conn: _fetch_docs(
                conn, f"SELECT * FROM exports WHERE id IN ({_marks(len(ids))})", ids
            )
        )
        by_id = {doc["id"]: _export(doc) for doc in docs}
        return [by_id[i] for i in ids if i in by_id]

    async def list_exports(
        self,
        first: int,
        after: str | None = None,
        search: str | None = None,
        connection_ids: Sequence[str] | None = None,
    ) -> Page[Export]:
        check_first(first)
        where, params = ["1 = 1"], []
        if search:
            where.append("instr(display_name_folded, ?) > 0")
            params.append(search.casefold())
        if connection_ids is not None:
            ids = unique_in_order(connection_ids)
            where.append(f"connection_id IN ({_marks(len(ids))})" if ids else "0 = 1")
            params.extend(ids)
        docs, total = await self._read(
            _in_snapshot(lambda conn: _page_query(conn, "exports", where, params, first, after))
        )
        return page_from_rows([_export(d) for d in docs], first, total, after)

    async def export_ids_using_connection(self, connection_id: str) -> list[str]:
        rows = await self._read(
            lambda conn: conn.execute(
                "SELECT id FROM exports WHERE connection_id = ? ORDER BY id", (connection_id,)
            ).fetchall()
        )
        return [r[0] for r in rows]

    async def detach_exports(self, connection_id: str, now: datetime) -> int:
        updated = await self._write(
            lambda conn: (
                conn.execute(
                    "UPDATE exports SET connection_id = NULL, updated_at = ? "
                    "WHERE connection_id = ?",
                    (_iso(now), connection_id),
                ).rowcount
            )
        )
        return int(updated)

    async def delete_export(self, export_id: str) -> bool:
        def delete(conn: sqlite3.Connection) -> int:
            # Runs go too: explicitly, not only by the foreign key's cascade,
            # so a database made without the cascade is cleaned the same way.
            conn.execute("DELETE FROM runs WHERE export_id = ?", (export_id,))
            return conn.execute("DELETE FROM exports WHERE id = ?", (export_id,)).rowcount

        return bool(await self._write(delete))

    async def list_scheduled_exports(self) -> list[Export]:
        docs = await self._read(
            lambda conn: _fetch_docs(
                conn,
                "SELECT * FROM exports WHERE schedule_mode != ? AND connection_id IS NOT NULL "
                "ORDER BY id",
                (ScheduleMode.OFF.value,),
            )
        )
        return [_export(d) for d in docs]

    # -- runs ------------------------------------------------------------
    async def insert_run(self, run: ExportRun) -> None:
        row = _run_row(run)
        columns = ", ".join(f'"{c}"' for c in row)
        sql = f"INSERT INTO runs ({columns}) VALUES ({', '.join(':' + c for c in row)})"

        def insert(conn: sqlite3.Connection) -> None:
            if (
                conn.execute("SELECT 1 FROM exports WHERE id = ?", (run.export_id,)).fetchone()
                is None
            ):
                raise NotFound("export", run.export_id)
            try:
                conn.execute(sql, row)
            except sqlite3.IntegrityError as exc:
                raise _run_conflict(conn, exc, run) from exc

        await self._write(insert)

    async def get_run(self, run_id: str) -> ExportRun | None:
        doc = await self._read(
            lambda conn: _fetch_doc(conn, "SELECT * FROM runs WHERE id = ?", (run_id,))
        )
        return None if doc is None else _run_from_row(doc)

    async def list_runs(
        self, first: int, after: str | None = None, export_id: str | None = None
    ) -> Page[ExportRun]:
        check_first(first)
        where, params = ["1 = 1"], []
        if export_id is not None:
            where.append("export_id = ?")
            params.append(export_id)
        docs, total = await self._read(
            _in_snapshot(
                lambda conn: _page_query(
                    conn, "runs", where, params, first, after, newest_first=True
                )
            )
        )
        return page_from_rows([_run_from_row(d) for d in docs], first, total, after)

    async def latest_runs(self, export_ids: Sequence[str]) -> dict[str, ExportRun]:
        ids = unique_in_order(export_ids)
        if not ids:
            return {}
        # runs_by_export (export_id, id) answers each group's MAX(id) from the index.
        docs = await self._read(
            lambda conn: _fetch_docs(
                conn,
                "SELECT * FROM runs WHERE id IN (SELECT MAX(id) FROM runs "
                f"WHERE export_id IN ({_marks(len(ids))}) GROUP BY export_id)",
                ids,
            )
        )
        return {run.export_id: run for run in map(_run_from_row, docs)}

    async def active_run(self, export_id: str) -> ExportRun | None:
        doc = await self._read(
            lambda conn: _fetch_doc(
                conn, "SELECT * FROM runs WHERE active_export_id = ?", (export_id,)
            )
        )
        return None if doc is None else _run_from_row(doc)

    async def list_active_runs(self) -> list[ExportRun]:
        docs = await self._read(
            lambda conn: _fetch_docs(
                conn, "SELECT * FROM runs WHERE active_export_id IS NOT NULL ORDER BY id"
            )
        )
        return [_run_from_row(d) for d in docs]

    async def update_run(
        self,
        run_id: str,
        *,
        expected_status: Sequence[ExportRunStatus] | None = None,
        **changes: Any,
    ) -> ExportRun | None:
        values = _encode(rec.run_changes_to_doc(changes))
        assignments = [f'"{c}" = :{c}' for c in values]
        if "status" in values or "export_id" in values:
            # Keep the active-run slot in step with the (new) status, in the same UPDATE.
            values["active_status"] = values.get("status")
            values["active_export"] = values.get("export_id")
            active = ", ".join(f"'{s.value}'" for s in ACTIVE_RUN_STATUSES)
            assignments.append(
                "active_export_id = CASE WHEN COALESCE(:active_status, status) "
                f"IN ({active}) THEN COALESCE(:active_export, export_id) ELSE NULL END"
            )
        where = "id = :run_id"
        values["run_id"] = run_id
        if expected_status is not None:
            statuses = [ExportRunStatus(s).value for s in expected_status]
            names = [f"expected_{i}" for i in range(len(statuses))]
            values.update(zip(names, statuses, strict=True))
            where += f" AND status IN ({', '.join(':' + n for n in names)})" if names else " AND 0"
        if not assignments:
            # Nothing to change: still a compare, so the answer is the run if it matches.
            sql = f"SELECT * FROM runs WHERE {where}"
        else:
            sql = f"UPDATE runs SET {', '.join(assignments)} WHERE {where} RETURNING *"

        def update(conn: sqlite3.Connection) -> dict[str, Any] | None:
            try:
                return _fetch_doc(conn, sql, values)  # type: ignore[arg-type]
            except sqlite3.IntegrityError as exc:
                current = _fetch_doc(conn, "SELECT * FROM runs WHERE id = ?", (run_id,))
                assert current is not None  # the UPDATE found it, in this transaction
                current.update(rec.run_changes_to_doc(changes))
                raise _run_conflict(conn, exc, _run_from_row(current)) from exc

        doc = await self._write(update)
        return None if doc is None else _run_from_row(doc)

    async def record_run_progress(self, run_id: str, progress: RunProgress) -> ExportRun | None:
        values = {
            "run_id": run_id,
            "running": ExportRunStatus.RUNNING.value,
            "counts": orjson.dumps(rec.counts_to_doc(progress.counts)).decode(),
            "progress": float(progress.progress),
            "checkpoint": orjson.dumps(progress.checkpoint).decode(),
            "new_errors": orjson.dumps([rec.error_to_doc(e) for e in progress.new_errors]).decode(),
            "message": progress.message,
            "cap": RUN_ERROR_SAMPLE_SIZE,
        }
        # The error sample keeps its first RUN_ERROR_SAMPLE_SIZE entries: the
        # stored ones, then the new ones, cut at the cap, all in this one UPDATE.
        sql = """
            UPDATE runs SET
                counts = :counts,
                progress = :progress,
                checkpoint = :checkpoint,
                message = COALESCE(:message, message),
                errors = (
                    SELECT COALESCE(json_group_array(json(value)), '[]') FROM (
                        SELECT value FROM (
                            SELECT 0 AS part, key, value FROM json_each(runs.errors)
                            UNION ALL
                            SELECT 1 AS part, key, value FROM json_each(:new_errors)
                        )
                        ORDER BY part, key
                        LIMIT :cap
                    )
                )
            WHERE id = :run_id AND status = :running
            RETURNING *
        """
        doc = await self._write(lambda conn: _fetch_doc(conn, sql, values))  # type: ignore[arg-type]
        return None if doc is None else _run_from_row(doc)

    async def request_run_cancel(self, run_id: str) -> ExportRun | None:
        values = {
            "run_id": run_id,
            "queued": ExportRunStatus.QUEUED.value,
            "running": ExportRunStatus.RUNNING.value,
            "cancelled": ExportRunStatus.CANCELLED.value,
            "now": _iso(utcnow()),
            "message": "Cancelled before it started.",
        }
        # SET expressions all see the row as it was, so ``status = :queued`` is the old status.
        sql = """
            UPDATE runs SET
                cancel_requested = 1,
                finished_at = CASE WHEN status = :queued THEN :now ELSE finished_at END,
                message = CASE WHEN status = :queued THEN :message ELSE message END,
                active_export_id = CASE WHEN status = :queued THEN NULL ELSE active_export_id END,
                status = CASE WHEN status = :queued THEN :cancelled ELSE status END
            WHERE id = :run_id AND status IN (:queued, :running)
            RETURNING *
        """

        def cancel(conn: sqlite3.Connection) -> dict[str, Any] | None:
            updated = _fetch_doc(conn, sql, values)  # type: ignore[arg-type]
            if updated is not None:
                return updated
            # Finished runs are left as they are; the caller sees their status.
            return _fetch_doc(conn, "SELECT * FROM runs WHERE id = ?", (run_id,))

        doc = await self._write(cancel)
        return None if doc is None else _run_from_row(doc)

    # -- oauth states ----------------------------------------------------
    async def save_oauth_state(self, state: OAuthState) -> None:
        row = _encode(rec.oauth_state_to_doc(state))
        sql = _upsert_sql("oauth_states", row, key="state")
        now = _iso(utcnow())

        def save(conn: sqlite3.Connection) -> None:
            conn.execute(
                "DELETE FROM oauth_states WHERE expires_at < strftime('%Y-%m-%dT%H:%M:%f', ?, ?)",
                (now, _OAUTH_STATE_GRACE_SQL),
            )
            conn.execute(sql, row)

        await self._write(save)

    async def consume_oauth_state(self, state: str) -> OAuthState | None:
        doc = await self._write(
            lambda conn: _fetch_doc(
                conn, "DELETE FROM oauth_states WHERE state = ? RETURNING *", (state,)
            )
        )
        return None if doc is None else rec.oauth_state_from_doc(doc)

    # -- refresh schedule & small key/value -----------------------------
    async def get_refresh_schedule(self) -> RefreshSchedule:
        row = await self._read(
            lambda conn: conn.execute(
                "SELECT value FROM key_values WHERE key = ?", (_REFRESH_SCHEDULE_KEY,)
            ).fetchone()
        )
        if row is None:
            return RefreshSchedule()
        doc = orjson.loads(row[0])
        if doc.get("updated_at") is not None:
            doc["updated_at"] = datetime.fromisoformat(doc["updated_at"])
        return rec.refresh_schedule_from_doc(doc)

    async def save_refresh_schedule(self, schedule: RefreshSchedule) -> None:
        doc = rec.refresh_schedule_to_doc(schedule)
        if doc["updated_at"] is not None:
            doc["updated_at"] = _iso(doc["updated_at"])
        value = orjson.dumps(doc).decode()
        await self._write(
            lambda conn: conn.execute(
                "INSERT INTO key_values (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (_REFRESH_SCHEDULE_KEY, value),
            )
        )

    async def claim_once(self, key: str, expires_at: datetime) -> bool:
        now = _iso(utcnow())
        values = (_CLAIM_PREFIX + key, "{}", _iso(expires_at))

        def claim(conn: sqlite3.Connection) -> bool:
            # Expired claims are forgotten first, so their keys can be claimed again.
            conn.execute(
                "DELETE FROM key_values WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,)
            )
            inserted = conn.execute(
                "INSERT OR IGNORE INTO key_values (key, value, expires_at) VALUES (?, ?, ?)", values
            ).rowcount
            return bool(inserted == 1)

        return await self._write(claim)


# -- helpers run on the database threads -------------------------------------


def _segment(doc: dict[str, Any]) -> Segment:
    doc.pop("name_folded", None)
    return rec.segment_from_doc(doc)


def _export(doc: dict[str, Any]) -> Export:
    doc.pop("display_name_folded", None)
    doc.pop("schedule_mode", None)
    return rec.export_from_doc(doc)


def _page_query(
    conn: sqlite3.Connection,
    table: str,
    where: list[str],
    params: list[Any],
    first: int,
    after: str | None,
    *,
    newest_first: bool = False,
) -> tuple[list[dict[str, Any]], int]:
    """``first + 1`` rows after the cursor, and how many rows match in all."""
    condition = " AND ".join(where)
    total = conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {condition}", params).fetchone()[0]
    page_where, page_params = list(where), list(params)
    if after is not None:
        page_where.append("id < ?" if newest_first else "id > ?")
        page_params.append(after)
    order = "DESC" if newest_first else "ASC"
    docs = _fetch_docs(
        conn,
        f"SELECT * FROM {table} WHERE {' AND '.join(page_where)} ORDER BY id {order} LIMIT ?",
        [*page_params, first + 1],
    )
    return docs, int(total)


def _write_profiles(conn: sqlite3.Connection, batch: Sequence[tuple[Profile, str]]) -> None:
    profile_rows: list[tuple[str, str, str]] = []
    member_rows: list[tuple[str, str]] = []
    names: set[str] = set()
    for profile, attributes in batch:
        profile_rows.append((profile.id, attributes, orjson.dumps(profile.segment_ids).decode()))
        member_rows.extend((segment_id, profile.id) for segment_id in profile.segment_ids)
        names.update(profile.attributes)
    conn.executemany(
        "INSERT INTO profiles (id, attributes, segment_ids) VALUES (?, ?, ?) "
        "ON CONFLICT(id) DO UPDATE SET attributes = excluded.attributes, "
        "segment_ids = excluded.segment_ids",
        profile_rows,
    )
    # Replace the memberships: a profile is in exactly the segments it was last given.
    conn.executemany(
        "DELETE FROM segment_members WHERE profile_id = ?", [(p.id,) for p, _ in batch]
    )
    conn.executemany(
        "INSERT INTO segment_members (segment_id, profile_id) VALUES (?, ?)", member_rows
    )
    conn.executemany(
        "INSERT OR IGNORE INTO profile_attributes (name) VALUES (?)", [(n,) for n in names]
    )


def _members_sql(segment_count: int) -> str:
    """The query for one batch of members: ``(after, limit)`` parameters per segment range."""
    if segment_count == 1:
        ids = (
            "SELECT profile_id FROM segment_members WHERE segment_id = ? AND profile_id > ? "
            "ORDER BY profile_id LIMIT ?"
        )
    elif segment_count <= _MAX_MERGED_SEGMENTS:
        # One index range per segment, each cut at the batch size, merged and de-duplicated.
        one = (
            "SELECT profile_id FROM (SELECT profile_id FROM segment_members "
            "WHERE segment_id = ? AND profile_id > ? ORDER BY profile_id LIMIT ?)"
        )
        ids = " UNION ".join([one] * segment_count) + " ORDER BY 1 LIMIT ?"
    else:
        ids = (
            "SELECT DISTINCT profile_id FROM segment_members INDEXED BY segment_members_by_profile "
            f"WHERE profile_id > ? AND segment_id IN ({_marks(segment_count)}) "
            "ORDER BY profile_id LIMIT ?"
        )
    return (
        "SELECT p.id, p.attributes, p.segment_ids FROM "
        f"({ids}) AS m JOIN profiles AS p ON p.id = m.profile_id ORDER BY p.id"
    )


def _members_params(segment_ids: list[str], after: str | None, limit: int) -> list[Any]:
    # '' sorts before every non-empty id, so "after nothing" is "after ''".
    start = after if after is not None else ""
    if len(segment_ids) == 1:
        return [segment_ids[0], start, limit]
    if len(segment_ids) <= _MAX_MERGED_SEGMENTS:
        params: list[Any] = []
        for segment_id in segment_ids:
            params.extend((segment_id, start, limit))
        params.append(limit)
        return params
    return [start, *segment_ids, limit]


def _fetch_profiles(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> list[Profile]:
    loads = orjson.loads
    return [
        Profile(pid, loads(attrs), loads(segs)) for pid, attrs, segs in conn.execute(sql, params)
    ]


def _run_conflict(
    conn: sqlite3.Connection, exc: sqlite3.IntegrityError, run: ExportRun
) -> Exception:
    """The store error a unique-index violation on ``runs`` means."""
    message = str(exc)
    if "active_export_id" in message:
        row = conn.execute(
            "SELECT id FROM runs WHERE active_export_id = ?", (run.export_id,)
        ).fetchone()
        return ActiveRunExists(run.export_id, row[0] if row else "")
    if "dedupe_key" in message and run.dedupe_key is not None:
        return DuplicateRun(run.dedupe_key)
    return exc
