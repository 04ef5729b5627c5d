"""The MongoDB database the store works on: the client, its collections, shared queries.

Every id is the document ``_id``, so cursor pagination is a range on ``_id``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConfigurationError, DuplicateKeyError

from service.store import rules
from service.store._paging import PageRequest, in_given_order, unique_in_order
from service.store.mongo.indexes import create_indexes
from service.store.mongo.member_counts import count_members_once

Doc = dict[str, Any]

DEFAULT_DATABASE = "segport"
"""The database used when the URL names none."""


class MongoDatabase:
    """One MongoDB database through PyMongo's asyncio client (one event loop's)."""

    def __init__(self, url: str, *, timeout_ms: int) -> None:
        self._url = url
        self._timeout_ms = timeout_ms
        self._client: AsyncMongoClient[Doc] | None = None
        self._db: AsyncDatabase[Doc] | None = None

    async def open(self) -> None:
        """Connect and make the indexes (idempotent)."""
        if self._client is not None:
            return
        try:
            client: AsyncMongoClient[Doc] = AsyncMongoClient(
                self._url,
                tz_aware=True,
                serverSelectionTimeoutMS=self._timeout_ms,
                connectTimeoutMS=self._timeout_ms,
                appname="segport",
            )
        except (ValueError, ConfigurationError) as exc:  # InvalidURI is a ConfigurationError
            # The URL itself is not repeated: it may hold a password.
            raise ValueError(f"SEGPORT_DATABASE_URL is not a usable MongoDB URL: {exc}") from exc
        self._client = client
        self._db = client.get_default_database(default=DEFAULT_DATABASE)
        try:
            await create_indexes(self._db)
            await count_members_once(self._db)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        client, self._client, self._db = self._client, None, None
        if client is not None:
            await client.close()

    async def ping(self) -> None:
        await self._database().command("ping")

    def _database(self) -> AsyncDatabase[Doc]:
        if self._db is None:
            raise RuntimeError("the MongoDB store is not open (call open() first)")
        return self._db

    def __getitem__(self, collection: str) -> AsyncCollection[Doc]:
        return self._database()[collection]

    @property
    def database(self) -> AsyncDatabase[Doc]:
        """The open database (for modules that take one, like the member counts)."""
        return self._database()

    async def page(
        self, collection: str, query: Doc, request: PageRequest
    ) -> tuple[list[Doc], int]:
        """``request.limit`` documents after the cursor, and how many match in all."""
        coll = self[collection]
        total = await coll.count_documents(query)
        docs = await (
            coll.find({**query, **id_after(request.after, newest_first=request.newest_first)})
            .sort("_id", DESCENDING if request.newest_first else ASCENDING)
            .limit(request.limit)
            .to_list()
        )
        return docs, total

    async def by_ids(self, collection: str, ids: Sequence[str]) -> list[Doc]:
        """The documents of ``ids`` that exist, in the order given (repeats once)."""
        wanted = unique_in_order(ids)
        if not wanted:
            return []
        docs = await self[collection].find({"_id": {"$in": wanted}}).to_list()
        return in_given_order(wanted, {doc["_id"]: doc for doc in docs})


def to_mongo(doc: Doc, key: str = "id") -> Doc:
    """A document with its ``key`` as ``_id`` (changed in place)."""
    doc["_id"] = doc.pop(key)
    return doc


def from_mongo(doc: Mapping[str, Any], key: str = "id") -> Doc:
    """A stored document with ``_id`` back as ``key``."""
    plain = dict(doc)
    plain[key] = plain.pop("_id")
    return plain


def id_after(after: str | None, *, newest_first: bool = False) -> Doc:
    """The filter for ids after the cursor ``after`` (smaller ones when newest first)."""
    if after is None:
        return {}
    return {"_id": {"$lt" if newest_first else "$gt": after}}


def contains_folded(search: str) -> Doc:
    """A filter value for a folded name field: names that contain ``search``, folded too."""
    return {"$regex": re.escape(rules.folded(search))}


def duplicate_key_field(exc: DuplicateKeyError) -> str:
    """Which unique index refused a write: from the server's key pattern, else its message."""
    details = exc.details or {}
    pattern = details.get("keyPattern") or details.get("keyValue") or {}
    if pattern:
        return str(next(iter(pattern)))
    message = str(exc)
    for field in (rules.ACTIVE_SLOT_FIELD, rules.DEDUPE_KEY_FIELD, "name"):
        if field in message:
            return field
    return "_id"
