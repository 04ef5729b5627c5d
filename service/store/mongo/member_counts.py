"""Segment member counts on MongoDB: ``segment_member_counts``, one document per segment.

``{_id: segment id, members: n}``, moved by ``$inc`` after each batch of
profile writes (see :mod:`service.store.mongo.profiles`), so reading a
segment's count is one document, never a count over ``profiles``.

A database made before the counts were kept gets them once, on open: the
counts are computed from ``profiles`` and a marker in ``store_migrations``
records that they were. (Writes from another process during that first
open may be counted twice or not at all: open every process on the new
version before writing profiles again, as for any migration.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

COUNTS = "segment_member_counts"
MIGRATIONS = "store_migrations"
COUNTED = "segment_member_counts"
"""The marker's ``_id`` in ``store_migrations``."""


async def count_members_once(db: AsyncDatabase[dict[str, Any]]) -> None:
    """Compute the counts from the profiles, unless done before."""
    if await db[MIGRATIONS].find_one({"_id": COUNTED}) is not None:
        return
    counts: Counter[str] = Counter()
    async for doc in db["profiles"].find({}, {"segment_ids": 1}):
        counts.update(doc.get("segment_ids") or [])
    if counts:
        await db[COUNTS].bulk_write(
            [
                UpdateOne({"_id": segment_id}, {"$set": {"members": members}}, upsert=True)
                for segment_id, members in counts.items()
            ],
            ordered=False,
        )
    await db[MIGRATIONS].update_one({"_id": COUNTED}, {"$setOnInsert": {"done": True}}, upsert=True)


async def add_to_counts(db: AsyncDatabase[dict[str, Any]], changes: Counter[str]) -> None:
    moves = [
        UpdateOne({"_id": segment_id}, {"$inc": {"members": change}}, upsert=True)
        for segment_id, change in changes.items()
        if change
    ]
    if moves:
        await db[COUNTS].bulk_write(moves, ordered=False)


async def read_counts(db: AsyncDatabase[dict[str, Any]], ids: Sequence[str]) -> dict[str, int]:
    docs = await db[COUNTS].find({"_id": {"$in": list(ids)}}).to_list()
    found = {doc["_id"]: int(doc["members"]) for doc in docs}
    return {segment_id: found.get(segment_id, 0) for segment_id in ids}
