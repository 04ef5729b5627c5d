"""Export runs on SQLite: the ``runs`` table and its one-active-run-per-export index.

A run row holds :data:`~service.store.rules.ACTIVE_SLOT_FIELD` (its export id
while the run is active); the partial unique index on it refuses a second
active run of an export, and every write that moves a run's status moves the
slot in the same transaction.
"""

# ruff: noqa: S608

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from service.domain import RUN_ERROR_SAMPLE_SIZE, ExportRun, ExportRunStatus, utcnow
from service.store import _run_records as run_rec
from service.store import rules
from service.store._paging import PageRequest, unique_in_order
from service.store.base import NotFound, Page, RunProgress
from service.store.sqlite.codec import encode, json_text
from service.store.sqlite.database import SQLiteDatabase
from service.store.sqlite.ledger import apply_ledger_changes, pack_sent
from service.store.sqlite.queries import fetch_doc, fetch_docs, marks, page_query

_SLOT = rules.ACTIVE_SLOT_FIELD

# The error sample keeps its first RUN_ERROR_SAMPLE_SIZE entries: the stored
# ones, then the new ones, cut at the cap, all in this one UPDATE.
_RECORD_PROGRESS_SQL = """
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


class SQLiteRuns:
    """The run part of :class:`~service.store.sqlite.SQLiteStore`."""

    _db: SQLiteDatabase

    async def insert_run(self, run: ExportRun) -> None:
        row = encode(run_rec.run_to_doc(run))
        columns = ", ".join(f'"{c}"' for c in row)
        sql = f"INSERT INTO runs ({columns}) VALUES ({', '.join(':' + c for c in row)})"

        def insert(conn: sqlite3.Connection) -> None:
            exists = conn.execute("SELECT 1 FROM exports WHERE id = ?", (run.export_id,))
            if exists.fetchone() is None:
                raise NotFound("export", run.export_id)
            try:
                conn.execute(sql, row)
            except sqlite3.IntegrityError as exc:
                raise _run_conflict(conn, exc, run.export_id, run.dedupe_key) from exc

        await self._db.write(insert)

    async def get_run(self, run_id: str) -> ExportRun | None:
        doc = await self._db.lookup(
            lambda conn: fetch_doc(conn, "SELECT * FROM runs WHERE id = ?", (run_id,))
        )
        return None if doc is None else run_rec.run_from_doc(doc)

    async def list_runs(
        self, first: int, after: str | None = None, export_id: str | None = None
    ) -> Page[ExportRun]:
        request = PageRequest(first, after, newest_first=True)
        where: list[str] = []
        params: list[Any] = []
        if export_id is not None:
            where.append("export_id = ?")
            params.append(export_id)
        docs, total = await self._db.lookup_snapshot(
            lambda conn: page_query(conn, "runs", where, params, request)
        )
        return request.page([run_rec.run_from_doc(d) for d in docs], total)

    async def latest_runs(self, export_ids: Sequence[str]) -> dict[str, ExportRun]:
        ids = unique_in_order(export_ids)
        if not ids:
            return {}
        # runs_by_export (export_id, id) answers each group's MAX(id) from the index.
        docs = await self._db.lookup(
            lambda conn: fetch_docs(
                conn,
                "SELECT * FROM runs WHERE id IN (SELECT MAX(id) FROM runs "
                f"WHERE export_id IN ({marks(len(ids))}) GROUP BY export_id)",
                ids,
            )
        )
        return {run.export_id: run for run in map(run_rec.run_from_doc, docs)}

    async def active_run(self, export_id: str) -> ExportRun | None:
        doc = await self._db.lookup(
            lambda conn: fetch_doc(conn, f"SELECT * FROM runs WHERE {_SLOT} = ?", (export_id,))
        )
        return None if doc is None else run_rec.run_from_doc(doc)

    async def list_active_runs(self) -> list[ExportRun]:
        docs = await self._db.lookup(
            lambda conn: fetch_docs(
                conn, f"SELECT * FROM runs WHERE {_SLOT} IS NOT NULL ORDER BY id"
            )
        )
        return [run_rec.run_from_doc(d) for d in docs]

    async def update_run(
        self,
        run_id: str,
        *,
        expected_status: Sequence[ExportRunStatus] | None = None,
        **changes: Any,
    ) -> ExportRun | None:
        values = encode(run_rec.run_changes_to_doc(changes))
        params: dict[str, Any] = {**values, "run_id": run_id}
        where = "id = :run_id"
        if expected_status is not None:
            statuses = run_rec.status_values(expected_status)
            names = [f"expected_{i}" for i in range(len(statuses))]
            params.update(zip(names, statuses, strict=True))
            where += f" AND status IN ({', '.join(':' + n for n in names)})" if names else " AND 0"
        moves_slot = rules.changes_move_active_slot(values)
        assignments = [f'"{c}" = :{c}' for c in values]
        if moves_slot:
            assignments.append(f"{_SLOT} = :{_SLOT}")
        if not values:
            # Nothing to change: still a compare, so the answer is the run if it matches.
            sql = f"SELECT * FROM runs WHERE {where}"
        else:
            sql = f"UPDATE runs SET {', '.join(assignments)} WHERE {where} RETURNING *"

        def update(conn: sqlite3.Connection) -> dict[str, Any] | None:
            bound = dict(params)
            if moves_slot:
                # The slot follows the (new) status, in the same transaction.
                current = fetch_doc(
                    conn, "SELECT export_id, status FROM runs WHERE id = ?", (run_id,)
                )
                if current is None:
                    return None
                bound[_SLOT] = rules.active_slot_after(values, current)
            try:
                doc = fetch_doc(conn, sql, bound)
            except sqlite3.IntegrityError as exc:
                export_id = values.get("export_id") or _export_id_of(conn, run_id)
                raise _run_conflict(conn, exc, export_id, values.get("dedupe_key")) from exc
            return doc

        doc = await self._db.write(update)
        return None if doc is None else run_rec.run_from_doc(doc)

    async def record_run_progress(self, run_id: str, progress: RunProgress) -> ExportRun | None:
        changes, new_errors = run_rec.progress_to_doc(progress)
        params = {
            **encode(changes),
            "message": changes.get("message"),
            "new_errors": json_text(new_errors),
            "cap": RUN_ERROR_SAMPLE_SIZE,
            "run_id": run_id,
            "running": ExportRunStatus.RUNNING.value,
        }
        ledger = progress.ledger
        # Packed here, on the event loop, so the writer thread runs no Python per entry.
        packed = pack_sent(ledger.sent) if ledger is not None and ledger.only_sent else None

        def record(conn: sqlite3.Connection) -> dict[str, Any] | None:
            doc = fetch_doc(conn, _RECORD_PROGRESS_SQL, params)
            if doc is not None and ledger:
                # The same transaction: the entries commit with the checkpoint or not at all.
                apply_ledger_changes(conn, ledger, packed)
            return doc

        doc = await self._db.write(record)
        if packed is not None and packed.entries != b"[]":
            # The journal's pages are read again only when it is merged, after the run.
            await self._db.release_writer_cache()
        return None if doc is None else run_rec.run_from_doc(doc)

    async def request_run_cancel(self, run_id: str) -> ExportRun | None:
        cancelled = encode(rules.cancel_queued_run(utcnow()))
        params = {
            **{f"cancelled_{c}": v for c, v in cancelled.items()},
            "run_id": run_id,
            "queued": ExportRunStatus.QUEUED.value,
            "running": ExportRunStatus.RUNNING.value,
        }
        # A running run is only asked to stop; a queued one takes every cancelled
        # field. SET expressions all see the row as it was, so ``status = :queued``
        # is the old status.
        queued_only = ", ".join(
            f'"{c}" = CASE WHEN status = :queued THEN :cancelled_{c} ELSE "{c}" END'
            for c in cancelled
            if c != "cancel_requested"
        )
        sql = (
            f"UPDATE runs SET cancel_requested = 1, {queued_only} "
            "WHERE id = :run_id AND status IN (:queued, :running) RETURNING *"
        )

        def cancel(conn: sqlite3.Connection) -> dict[str, Any] | None:
            updated = fetch_doc(conn, sql, params)
            if updated is not None:
                return updated
            # Finished runs are left as they are; the caller sees their status.
            return fetch_doc(conn, "SELECT * FROM runs WHERE id = ?", (run_id,))

        doc = await self._db.write(cancel)
        return None if doc is None else run_rec.run_from_doc(doc)


# -- run on the writer thread ---------------------------------------------------


def _export_id_of(conn: sqlite3.Connection, run_id: str) -> str:
    row = conn.execute("SELECT export_id FROM runs WHERE id = ?", (run_id,)).fetchone()
    return "" if row is None else str(row[0])


def _run_conflict(
    conn: sqlite3.Connection, exc: sqlite3.IntegrityError, export_id: str, dedupe_key: str | None
) -> Exception:
    """The store error a unique-index violation on ``runs`` means (else ``exc`` itself)."""
    message = str(exc)  # "UNIQUE constraint failed: runs.<column>"
    field = next((f for f in (_SLOT, rules.DEDUPE_KEY_FIELD) if f in message), "")
    active_run_id: str | None = None
    if field == _SLOT:
        row = conn.execute(f"SELECT id FROM runs WHERE {_SLOT} = ?", (export_id,)).fetchone()
        active_run_id = None if row is None else str(row[0])
    error = rules.run_index_refusal(
        field, export_id=export_id, dedupe_key=dedupe_key, active_run_id=active_run_id
    )
    return exc if error is None else error
