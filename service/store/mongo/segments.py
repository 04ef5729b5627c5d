"""Segments on MongoDB: the ``segments`` collection; member counts are kept in
``segment_member_counts`` (:mod:`service.store.mongo.member_counts`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pymongo.errors import DuplicateKeyError

from service.domain import Segment
from service.store import _records as rec
from service.store import rules
from service.store._paging import PageRequest, unique_in_order
from service.store.base import Page
from service.store.mongo.database import (
    Doc,
    MongoDatabase,
    contains_folded,
    duplicate_key_field,
    from_mongo,
    to_mongo,
)
from service.store.mongo.member_counts import read_counts


def _segment(doc: Mapping[str, Any]) -> Segment:
    return rec.segment_from_doc(from_mongo(doc))


class MongoSegments:
    """The segment part of :class:`~service.store.mongo.MongoStore`."""

    _db: MongoDatabase

    async def save_segment(self, segment: Segment) -> None:
        doc = to_mongo(rec.segment_to_doc(segment))
        try:
            await self._db["segments"].replace_one({"_id": segment.id}, doc, upsert=True)
        except DuplicateKeyError as exc:
            if duplicate_key_field(exc) != "name":
                raise
            raise rules.duplicate_segment_name(segment.name) from exc

    async def get_segment(self, segment_id: str) -> Segment | None:
        doc = await self._db["segments"].find_one({"_id": segment_id})
        return None if doc is None else _segment(doc)

    async def get_segments(self, segment_ids: Sequence[str]) -> list[Segment]:
        return [_segment(d) for d in await self._db.by_ids("segments", segment_ids)]

    async def list_segments(
        self, first: int, after: str | None = None, search: str | None = None
    ) -> Page[Segment]:
        request = PageRequest(first, after)
        query: Doc = {"name_folded": contains_folded(search)} if search else {}
        docs, total = await self._db.page("segments", query, request)
        return request.page([_segment(d) for d in docs], total)

    async def count_segment_members(self, segment_ids: Sequence[str]) -> int:
        ids = unique_in_order(segment_ids)
        if not ids:
            return 0
        if len(ids) == 1:
            return (await read_counts(self._db.database, ids))[ids[0]]
        # Several segments share members; a profile is one document, so counting
        # documents counts each once (once per run, not per page).
        return await self._db["profiles"].count_documents({"segment_ids": {"$in": ids}})

    async def segment_member_at(self, segment_ids: Sequence[str], position: int) -> str | None:
        rules.require_position(position)
        ids = unique_in_order(segment_ids)
        if not ids:
            return None
        membership: Any = ids[0] if len(ids) == 1 else {"$in": ids}
        cursor = (
            self._db["profiles"]
            .find({"segment_ids": membership}, {"_id": 1})
            .sort("_id", 1)
            .skip(position)
            .limit(1)
        )
        found = await cursor.to_list()
        return str(found[0]["_id"]) if found else None

    async def segment_member_counts(self, segment_ids: Sequence[str]) -> dict[str, int]:
        ids = unique_in_order(segment_ids)
        return await read_counts(self._db.database, ids) if ids else {}
