"""Exports on SQLite: the ``exports`` table (and, on delete, the export's runs)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from service.domain import Export, ScheduleMode
from service.store import _records as rec
from service.store import rules
from service.store._paging import PageRequest, in_given_order, unique_in_order
from service.store.base import Page
from service.store.sqlite.codec import encode, iso
from service.store.sqlite.database import SQLiteDatabase
from service.store.sqlite.ledger import delete_ledger
from service.store.sqlite.queries import (
    fetch_by_ids,
    fetch_doc,
    fetch_docs,
    marks,
    page_query,
    upsert_sql,
)


def _export_row(export: Export) -> dict[str, Any]:
    row = encode(rec.export_to_doc(export))
    # A plain column, so "scheduled exports" is a query on it rather than on JSON.
    row["schedule_mode"] = export.schedule.mode.value
    return row


class SQLiteExports:
    """The export part of :class:`~service.store.sqlite.SQLiteStore`."""

    _db: SQLiteDatabase

    async def save_export(self, export: Export) -> None:
        row = _export_row(export)
        sql = upsert_sql("exports", row)
        await self._db.write(lambda conn: conn.execute(sql, row))

    async def get_export(self, export_id: str) -> Export | None:
        doc = await self._db.lookup(
            lambda conn: fetch_doc(conn, "SELECT * FROM exports WHERE id = ?", (export_id,))
        )
        return None if doc is None else rec.export_from_doc(doc)

    async def get_exports(self, export_ids: Sequence[str]) -> list[Export]:
        ids = unique_in_order(export_ids)
        if not ids:
            return []
        docs = await self._db.lookup(lambda conn: fetch_by_ids(conn, "exports", ids))
        return in_given_order(ids, {doc["id"]: rec.export_from_doc(doc) for doc in docs})

    async def list_exports(
        self,
        first: int,
        after: str | None = None,
        search: str | None = None,
        connection_ids: Sequence[str] | None = None,
    ) -> Page[Export]:
        request = PageRequest(first, after)
        where: list[str] = []
        params: list[Any] = []
        if search:
            where.append("instr(display_name_folded, ?) > 0")
            params.append(rules.folded(search))
        if connection_ids is not None:
            ids = unique_in_order(connection_ids)
            where.append(f"connection_id IN ({marks(len(ids))})" if ids else "0 = 1")
            params.extend(ids)
        docs, total = await self._db.lookup_snapshot(
            lambda conn: page_query(conn, "exports", where, params, request)
        )
        return request.page([rec.export_from_doc(d) for d in docs], total)

    async def export_ids_using_connection(self, connection_id: str) -> list[str]:
        rows = await self._db.lookup(
            lambda conn: conn.execute(
                "SELECT id FROM exports WHERE connection_id = ? ORDER BY id", (connection_id,)
            ).fetchall()
        )
        return [r[0] for r in rows]

    async def detach_exports(self, connection_id: str, now: datetime) -> int:
        updated = await self._db.write(
            lambda conn: (
                conn.execute(
                    "UPDATE exports SET connection_id = NULL, updated_at = ? "
                    "WHERE connection_id = ?",
                    (iso(now), connection_id),
                ).rowcount
            )
        )
        return int(updated)

    async def delete_export(self, export_id: str) -> bool:
        def delete(conn: sqlite3.Connection) -> int:
            # Runs go too: explicitly, not only by the foreign key's cascade,
            # so a database made without the cascade is cleaned the same way.
            conn.execute("DELETE FROM runs WHERE export_id = ?", (export_id,))
            delete_ledger(conn, export_id)
            return conn.execute("DELETE FROM exports WHERE id = ?", (export_id,)).rowcount

        return bool(await self._db.write(delete))

    async def list_scheduled_exports(self) -> list[Export]:
        docs = await self._db.lookup(
            lambda conn: fetch_docs(
                conn,
                "SELECT * FROM exports WHERE schedule_mode != ? AND connection_id IS NOT NULL "
                "ORDER BY id",
                (ScheduleMode.OFF.value,),
            )
        )
        return [rec.export_from_doc(d) for d in docs]
