"""Segments on SQLite: the ``segments`` table, and member counts kept in
``segment_member_counts`` (counted from ``segment_members`` only across several segments)."""

# ruff: noqa: S608

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from functools import partial
from typing import Any

from service.domain import Segment
from service.store import _records as rec
from service.store import rules
from service.store._paging import PageRequest, in_given_order, unique_in_order
from service.store.base import Page
from service.store.sqlite.codec import encode, json_text
from service.store.sqlite.database import SQLiteDatabase
from service.store.sqlite.queries import fetch_by_ids, fetch_doc, marks, page_query, upsert_sql


def _member_counts(conn: sqlite3.Connection, ids: list[str]) -> dict[str, int]:
    sql = (
        "SELECT segment_id, members FROM segment_member_counts "
        "WHERE segment_id IN (SELECT value FROM json_each(?))"
    )
    return {
        segment_id: int(members) for segment_id, members in conn.execute(sql, (json_text(ids),))
    }


class SQLiteSegments:
    """The segment part of :class:`~service.store.sqlite.SQLiteStore`."""

    _db: SQLiteDatabase

    async def save_segment(self, segment: Segment) -> None:
        row = encode(rec.segment_to_doc(segment))
        sql = upsert_sql("segments", row)

        def save(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(sql, row)
            except sqlite3.IntegrityError as exc:
                raise rules.duplicate_segment_name(segment.name) from exc

        await self._db.write(save)

    async def get_segment(self, segment_id: str) -> Segment | None:
        doc = await self._db.lookup(
            lambda conn: fetch_doc(conn, "SELECT * FROM segments WHERE id = ?", (segment_id,))
        )
        return None if doc is None else rec.segment_from_doc(doc)

    async def get_segments(self, segment_ids: Sequence[str]) -> list[Segment]:
        ids = unique_in_order(segment_ids)
        if not ids:
            return []
        docs = await self._db.lookup(lambda conn: fetch_by_ids(conn, "segments", ids))
        return in_given_order(ids, {doc["id"]: rec.segment_from_doc(doc) for doc in docs})

    async def list_segments(
        self, first: int, after: str | None = None, search: str | None = None
    ) -> Page[Segment]:
        request = PageRequest(first, after)
        where: list[str] = []
        params: list[Any] = []
        if search:
            where.append("instr(name_folded, ?) > 0")
            params.append(rules.folded(search))
        docs, total = await self._db.lookup_snapshot(
            lambda conn: page_query(conn, "segments", where, params, request)
        )
        return request.page([rec.segment_from_doc(d) for d in docs], total)

    async def count_segment_members(self, segment_ids: Sequence[str]) -> int:
        ids = unique_in_order(segment_ids)
        if not ids:
            return 0
        if len(ids) == 1:
            return (await self.segment_member_counts(ids))[ids[0]]
        # Several segments share members: counted (once per run, not per page).
        sql = (
            "SELECT COUNT(DISTINCT profile_id) FROM segment_members "
            f"WHERE segment_id IN ({marks(len(ids))})"
        )
        count = await self._db.read(lambda conn: conn.execute(sql, ids).fetchone()[0])
        return int(count)

    async def segment_member_at(self, segment_ids: Sequence[str], position: int) -> str | None:
        rules.require_position(position)
        ids = unique_in_order(segment_ids)
        if not ids:
            return None
        # The memberships' (segment, profile) index gives each segment's ids in order; with
        # several segments, SQLite merges them and skips the shared ones.
        sql = (
            "SELECT DISTINCT profile_id FROM segment_members "
            f"WHERE segment_id IN ({marks(len(ids))}) ORDER BY profile_id LIMIT 1 OFFSET ?"
        )
        row = await self._db.read(lambda conn: conn.execute(sql, [*ids, position]).fetchone())
        return None if row is None else str(row[0])

    async def segment_member_counts(self, segment_ids: Sequence[str]) -> dict[str, int]:
        ids = unique_in_order(segment_ids)
        if not ids:
            return {}
        rows = await self._db.lookup(partial(_member_counts, ids=ids))
        return {segment_id: rows.get(segment_id, 0) for segment_id in ids}
