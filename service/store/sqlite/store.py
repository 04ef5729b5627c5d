"""The SQLite store: one class made of the aggregate parts, over one database."""

from __future__ import annotations

from pathlib import Path

from service.store import rules
from service.store.sqlite.connections import SQLiteConnections
from service.store.sqlite.database import SQLiteDatabase
from service.store.sqlite.exports import SQLiteExports
from service.store.sqlite.ledger import SQLiteLedger
from service.store.sqlite.profiles import SQLiteProfiles
from service.store.sqlite.runs import SQLiteRuns
from service.store.sqlite.segments import SQLiteSegments
from service.store.sqlite.small_state import SQLiteSmallState


class SQLiteStore(
    SQLiteSegments,
    SQLiteProfiles,
    SQLiteConnections,
    SQLiteExports,
    SQLiteRuns,
    SQLiteSmallState,
    SQLiteLedger,
):
    """The :class:`~service.store.base.Store` on one SQLite file."""

    def __init__(self, path: Path, *, write_batch_size: int) -> None:
        rules.require_at_least_one("write_batch_size", write_batch_size)
        self._db = SQLiteDatabase(path)
        self._write_batch_size = write_batch_size

    async def open(self) -> None:
        await self._db.open()

    async def close(self) -> None:
        await self._db.close()

    async def ping(self) -> None:
        await self._db.read(lambda conn: conn.execute("SELECT 1").fetchone())
