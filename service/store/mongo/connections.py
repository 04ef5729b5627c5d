"""Connections and their pending OAuth states on MongoDB (``connections``, ``oauth_states``).

Expired OAuth states are removed by a TTL index once the grace period has
passed (see :mod:`service.store.mongo.indexes`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from service.domain import Connection, ConnectionUsableBy, OAuthState
from service.store import _records as rec
from service.store._paging import PageRequest
from service.store.base import Page
from service.store.mongo.database import Doc, MongoDatabase, from_mongo, to_mongo


def _connection(doc: Mapping[str, Any]) -> Connection:
    return rec.connection_from_doc(from_mongo(doc))


class MongoConnections:
    """The connection and OAuth-state part of :class:`~service.store.mongo.MongoStore`."""

    _db: MongoDatabase

    async def save_connection(self, connection: Connection) -> None:
        doc = to_mongo(rec.connection_to_doc(connection))
        await self._db["connections"].replace_one({"_id": connection.id}, doc, upsert=True)

    async def get_connection(self, connection_id: str) -> Connection | None:
        doc = await self._db["connections"].find_one({"_id": connection_id})
        return None if doc is None else _connection(doc)

    async def list_connections(
        self,
        first: int,
        after: str | None = None,
        usable_by: Sequence[ConnectionUsableBy] | None = None,
    ) -> Page[Connection]:
        request = PageRequest(first, after)
        query: Doc = {}
        if usable_by is not None:
            query["usable_by"] = {"$in": rec.usable_by_values(usable_by)}
        docs, total = await self._db.page("connections", query, request)
        return request.page([_connection(d) for d in docs], total)

    async def delete_connection(self, connection_id: str) -> bool:
        result = await self._db["connections"].delete_one({"_id": connection_id})
        return result.deleted_count > 0

    # -- oauth states ----------------------------------------------------------
    async def save_oauth_state(self, state: OAuthState) -> None:
        doc = to_mongo(rec.oauth_state_to_doc(state), key="state")
        await self._db["oauth_states"].replace_one({"_id": state.state}, doc, upsert=True)

    async def consume_oauth_state(self, state: str) -> OAuthState | None:
        doc = await self._db["oauth_states"].find_one_and_delete({"_id": state})
        return None if doc is None else rec.oauth_state_from_doc(from_mongo(doc, key="state"))
