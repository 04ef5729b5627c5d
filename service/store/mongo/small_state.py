"""Small state on MongoDB: the refresh schedule (``settings``) and once-only claims (``claims``).

Expired claims are removed by a TTL index, but only every minute or so: a
claim checks expiry itself.
"""

from __future__ import annotations

from datetime import datetime

from pymongo.errors import DuplicateKeyError

from service.domain import RefreshSchedule, utcnow
from service.store import _records as rec
from service.store import rules
from service.store.mongo.database import MongoDatabase


class MongoSmallState:
    """The refresh-schedule and claim part of :class:`~service.store.mongo.MongoStore`."""

    _db: MongoDatabase

    async def get_refresh_schedule(self) -> RefreshSchedule:
        doc = await self._db["settings"].find_one({"_id": rules.REFRESH_SCHEDULE_KEY})
        return RefreshSchedule() if doc is None else rec.refresh_schedule_from_doc(doc)

    async def save_refresh_schedule(self, schedule: RefreshSchedule) -> None:
        doc = rec.refresh_schedule_to_doc(schedule)
        await self._db["settings"].replace_one(
            {"_id": rules.REFRESH_SCHEDULE_KEY}, doc, upsert=True
        )

    async def claim_once(self, key: str, expires_at: datetime) -> bool:
        claims = self._db["claims"]
        doc = {"_id": key, "expires_at": rec.as_utc(expires_at)}
        try:
            await claims.insert_one(doc)
            return True
        except DuplicateKeyError:
            pass
        # The TTL monitor removes expired claims only every minute or so: an
        # expired one is taken over here, atomically, by whoever deletes it.
        expired = await claims.delete_one({"_id": key, "expires_at": {"$lte": utcnow()}})
        if expired.deleted_count == 0:
            return False
        try:
            await claims.insert_one(doc)
            return True
        except DuplicateKeyError:
            return False
