"""Exports on MongoDB: the ``exports`` collection (and, on delete, the export's runs)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING

from service.domain import Export, ScheduleMode
from service.store import _records as rec
from service.store._paging import PageRequest, unique_in_order
from service.store.base import Page
from service.store.mongo.database import Doc, MongoDatabase, contains_folded, from_mongo, to_mongo


def _export(doc: Mapping[str, Any]) -> Export:
    return rec.export_from_doc(from_mongo(doc))


class MongoExports:
    """The export part of :class:`~service.store.mongo.MongoStore`."""

    _db: MongoDatabase

    async def save_export(self, export: Export) -> None:
        doc = to_mongo(rec.export_to_doc(export))
        await self._db["exports"].replace_one({"_id": export.id}, doc, upsert=True)

    async def get_export(self, export_id: str) -> Export | None:
        doc = await self._db["exports"].find_one({"_id": export_id})
        return None if doc is None else _export(doc)

    async def get_exports(self, export_ids: Sequence[str]) -> list[Export]:
        return [_export(d) for d in await self._db.by_ids("exports", export_ids)]

    async def list_exports(
        self,
        first: int,
        after: str | None = None,
        search: str | None = None,
        connection_ids: Sequence[str] | None = None,
    ) -> Page[Export]:
        request = PageRequest(first, after)
        query: Doc = {}
        if search:
            query["display_name_folded"] = contains_folded(search)
        if connection_ids is not None:
            query["connection_id"] = {"$in": unique_in_order(connection_ids)}
        docs, total = await self._db.page("exports", query, request)
        return request.page([_export(d) for d in docs], total)

    async def export_ids_using_connection(self, connection_id: str) -> list[str]:
        cursor = (
            self._db["exports"]
            .find({"connection_id": connection_id}, {"_id": 1})
            .sort("_id", ASCENDING)
        )
        return [d["_id"] for d in await cursor.to_list()]

    async def detach_exports(self, connection_id: str, now: datetime) -> int:
        result = await self._db["exports"].update_many(
            {"connection_id": connection_id},
            {"$set": {"connection_id": None, "updated_at": rec.as_utc(now)}},
        )
        return result.matched_count

    async def delete_export(self, export_id: str) -> bool:
        # The export goes first: insert_run checks the export exists, so once it
        # is gone no new run can appear for it; then its runs are removed.
        result = await self._db["exports"].delete_one({"_id": export_id})
        await self._db["runs"].delete_many({"export_id": export_id})
        await self._db["ledger_entries"].delete_many({"e": export_id})
        await self._db["ledger_standings"].delete_many({"e": export_id})
        await self._db["ledgers"].delete_one({"_id": export_id})
        return result.deleted_count > 0

    async def list_scheduled_exports(self) -> list[Export]:
        cursor = (
            self._db["exports"]
            .find(
                {"schedule.mode": {"$ne": ScheduleMode.OFF.value}, "connection_id": {"$ne": None}}
            )
            .sort("_id", ASCENDING)
        )
        return [_export(d) for d in await cursor.to_list()]
