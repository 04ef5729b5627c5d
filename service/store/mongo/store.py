"""The MongoDB store: one class made of the aggregate parts, over one database."""

from __future__ import annotations

from service.store import rules
from service.store.mongo.connections import MongoConnections
from service.store.mongo.database import MongoDatabase
from service.store.mongo.exports import MongoExports
from service.store.mongo.profiles import MongoProfiles
from service.store.mongo.runs import MongoRuns
from service.store.mongo.segments import MongoSegments
from service.store.mongo.small_state import MongoSmallState


class MongoStore(
    MongoSegments,
    MongoProfiles,
    MongoConnections,
    MongoExports,
    MongoRuns,
    MongoSmallState,
):
    """The :class:`~service.store.base.Store` on a MongoDB database."""

    def __init__(self, url: str, *, write_batch_size: int, timeout_ms: int) -> None:
        rules.require_at_least_one("write_batch_size", write_batch_size)
        rules.require_at_least_one("timeout_ms", timeout_ms)
        self._db = MongoDatabase(url, timeout_ms=timeout_ms)
        self._write_batch_size = write_batch_size
        self._known_attributes = set()

    async def open(self) -> None:
        await self._db.open()

    async def close(self) -> None:
        await self._db.close()

    async def ping(self) -> None:
        await self._db.ping()
