"""Connections and their pending OAuth states on SQLite (``connections``, ``oauth_states``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from service.domain import Connection, ConnectionUsableBy, OAuthState, utcnow
from service.store import _records as rec
from service.store import rules
from service.store._paging import PageRequest
from service.store.base import Page
from service.store.sqlite.codec import encode, iso
from service.store.sqlite.database import SQLiteDatabase
from service.store.sqlite.queries import fetch_doc, marks, page_query, upsert_sql


class SQLiteConnections:
    """The connection and OAuth-state part of :class:`~service.store.sqlite.SQLiteStore`."""

    _db: SQLiteDatabase

    async def save_connection(self, connection: Connection) -> None:
        row = encode(rec.connection_to_doc(connection))
        sql = upsert_sql("connections", row)
        await self._db.write(lambda conn: conn.execute(sql, row))

    async def get_connection(self, connection_id: str) -> Connection | None:
        doc = await self._db.lookup(
            lambda conn: fetch_doc(conn, "SELECT * FROM connections WHERE id = ?", (connection_id,))
        )
        return None if doc is None else rec.connection_from_doc(doc)

    async def list_connections(
        self,
        first: int,
        after: str | None = None,
        usable_by: Sequence[ConnectionUsableBy] | None = None,
    ) -> Page[Connection]:
        request = PageRequest(first, after)
        where: list[str] = []
        params: list[Any] = []
        if usable_by is not None:
            values = rec.usable_by_values(usable_by)
            where.append(f"usable_by IN ({marks(len(values))})" if values else "0 = 1")
            params.extend(values)
        docs, total = await self._db.lookup_snapshot(
            lambda conn: page_query(conn, "connections", where, params, request)
        )
        return request.page([rec.connection_from_doc(d) for d in docs], total)

    async def delete_connection(self, connection_id: str) -> bool:
        deleted = await self._db.write(
            lambda conn: (
                conn.execute("DELETE FROM connections WHERE id = ?", (connection_id,)).rowcount
            )
        )
        return bool(deleted)

    # -- oauth states ----------------------------------------------------------
    async def save_oauth_state(self, state: OAuthState) -> None:
        row = encode(rec.oauth_state_to_doc(state))
        sql = upsert_sql("oauth_states", row, key="state")
        # States expired longer ago than the grace period go as a new one comes.
        forgotten_before = iso(utcnow() - rules.OAUTH_STATE_GRACE)

        def save(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM oauth_states WHERE expires_at < ?", (forgotten_before,))
            conn.execute(sql, row)

        await self._db.write(save)

    async def consume_oauth_state(self, state: str) -> OAuthState | None:
        doc = await self._db.write(
            lambda conn: fetch_doc(
                conn, "DELETE FROM oauth_states WHERE state = ? RETURNING *", (state,)
            )
        )
        return None if doc is None else rec.oauth_state_from_doc(doc)
