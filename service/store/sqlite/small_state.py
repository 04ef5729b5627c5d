"""Small state on SQLite: the refresh schedule and once-only claims, in ``key_values``."""

from __future__ import annotations

import sqlite3
from datetime import datetime

import orjson

from service.domain import RefreshSchedule, utcnow
from service.store import _records as rec
from service.store import rules
from service.store.sqlite.codec import iso, json_text
from service.store.sqlite.database import SQLiteDatabase

# Claims share the table with the refresh schedule; the prefix keeps their keys apart.
_CLAIM_PREFIX = "claim:"


class SQLiteSmallState:
    """The refresh-schedule and claim part of :class:`~service.store.sqlite.SQLiteStore`."""

    _db: SQLiteDatabase

    async def get_refresh_schedule(self) -> RefreshSchedule:
        row = await self._db.lookup(
            lambda conn: conn.execute(
                "SELECT value FROM key_values WHERE key = ?", (rules.REFRESH_SCHEDULE_KEY,)
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
            doc["updated_at"] = iso(doc["updated_at"])
        value = json_text(doc)
        await self._db.write(
            lambda conn: conn.execute(
                "INSERT INTO key_values (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (rules.REFRESH_SCHEDULE_KEY, value),
            )
        )

    async def claim_once(self, key: str, expires_at: datetime) -> bool:
        now = iso(utcnow())
        values = (_CLAIM_PREFIX + key, "{}", iso(expires_at))

        def claim(conn: sqlite3.Connection) -> bool:
            # Expired claims are forgotten first, so their keys can be claimed again.
            conn.execute(
                "DELETE FROM key_values WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,)
            )
            inserted = conn.execute(
                "INSERT OR IGNORE INTO key_values (key, value, expires_at) VALUES (?, ?, ?)", values
            ).rowcount
            return bool(inserted == 1)

        return await self._db.write(claim)
