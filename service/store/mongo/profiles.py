"""Profiles on MongoDB: ``profiles`` (with their segment ids) and ``profile_attributes``.

A multikey index on ``(segment_ids, _id)`` makes "members of these segments
after profile X, by id" one index scan (MongoDB merges the ranges of several
segments and returns a profile once).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from pymongo import ASCENDING, ReplaceOne, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

from service.domain import Profile
from service.store import _records as rec
from service.store import rules
from service.store.mongo.database import Doc, MongoDatabase, id_after
from service.store.mongo.member_counts import add_to_counts


class MongoProfiles(rules.KeysetSegmentMembers):
    """The profile part of :class:`~service.store.mongo.MongoStore`."""

    _db: MongoDatabase
    _write_batch_size: int
    # Attribute names this process has already recorded: skip re-writing them.
    _known_attributes: set[str]

    async def upsert_profiles(self, profiles: Sequence[Profile]) -> int:
        checked = [profile for profile, _ in rec.checked_profiles(profiles)]
        for batch in rules.in_batches(checked, self._write_batch_size):
            await self._write_batch(batch)
            await self._record_attribute_names({n for p in batch for n in p.attributes})
        return len(checked)

    async def _write_batch(self, batch: Sequence[Profile]) -> None:
        """Replace the batch's profiles and move the member counts by what changed.

        Each replacement applies only if the profile's segments are still the ones
        read just before (or it still does not exist): the counts move by the
        difference from what was really replaced, so they stay exact whoever writes
        the same profiles at once. A replacement that finds another writer's
        segments is read and tried again.
        """
        coll = self._db["profiles"]
        pending = {p.id: p for p in batch}
        while pending:
            profiles = list(pending.values())
            found = await coll.find({"_id": {"$in": list(pending)}}, {"segment_ids": 1}).to_list()
            before: dict[str, list[str]] = {d["_id"]: d["segment_ids"] for d in found}
            lost = await _replace_if_unchanged(coll, profiles, before)
            changes: Counter[str] = Counter()
            for index, profile in enumerate(profiles):
                if index in lost:
                    continue
                changes.subtract(before.get(profile.id, []))
                changes.update(profile.segment_ids)
                del pending[profile.id]
            await add_to_counts(self._db.database, changes)

    async def _record_attribute_names(self, names: set[str]) -> None:
        new = sorted(names - self._known_attributes)
        if not new:
            return
        await self._db["profile_attributes"].bulk_write(
            [UpdateOne({"_id": n}, {"$setOnInsert": {"name": n}}, upsert=True) for n in new],
            ordered=False,
        )
        self._known_attributes.update(new)

    async def get_profile(self, profile_id: str) -> Profile | None:
        doc = await self._db["profiles"].find_one({"_id": profile_id})
        if doc is None:
            return None
        return Profile(doc["_id"], doc["attributes"], doc["segment_ids"])

    async def profile_attribute_names(self) -> list[str]:
        cursor = self._db["profile_attributes"].find({}, {"_id": 1}).sort("_id", 1)
        return [d["_id"] for d in await cursor.to_list()]

    async def _read_member_batch(
        self, segment_ids: list[str], after: str | None, limit: int
    ) -> list[Profile]:
        membership: Any = segment_ids[0] if len(segment_ids) == 1 else {"$in": segment_ids}
        query: Doc = {"segment_ids": membership, **id_after(after)}
        # One bounded query per batch (not one long cursor): nothing stays
        # open between batches, however slowly the destination consumes them.
        docs = await (
            self._db["profiles"]
            .find(query, batch_size=limit)
            .sort("_id", ASCENDING)
            .limit(limit)
            .to_list()
        )
        return [Profile(d["_id"], d["attributes"], d["segment_ids"]) for d in docs]


async def _replace_if_unchanged(
    coll: AsyncCollection[Doc], profiles: list[Profile], before: dict[str, list[str]]
) -> set[int]:
    """Write each profile where its stored segments are ``before``'s; the indexes of those
    another writer changed in between (their conditional upsert met the existing _id)."""
    writes = []
    for profile in profiles:
        unchanged: Any = before.get(profile.id, _ABSENT)
        writes.append(
            ReplaceOne(
                {"_id": profile.id, "segment_ids": unchanged},
                {"attributes": profile.attributes, "segment_ids": profile.segment_ids},
                upsert=True,
            )
        )
    try:
        await coll.bulk_write(writes, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(e.get("code") != DUPLICATE_KEY for e in errors):
            raise
        return {int(e["index"]) for e in errors}
    return set()


_ABSENT = {"$exists": False}
DUPLICATE_KEY = 11000
