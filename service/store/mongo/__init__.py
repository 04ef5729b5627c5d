"""The distributed store: MongoDB through PyMongo's native asyncio client.

Collections mirror the SQLite tables. Its parts:

- :mod:`~service.store.mongo.database`: the client, its collections and the
  queries the aggregates share (pages by ``_id``, look-ups by ids);
- :mod:`~service.store.mongo.indexes`: the indexes, made on open;
- one module per aggregate (segments, profiles, connections and OAuth states,
  exports, runs, small state), each a part of :class:`MongoStore`;
- :mod:`~service.store.mongo.store`: the class that joins them.

The one-active-run rule and dedupe keys are partial unique indexes, so
concurrent workers cannot race. Nothing here needs multi-document
transactions (a standalone server works). Rules the SQLite store shares live
in :mod:`service.store.rules`.
"""

from __future__ import annotations

from service.store.mongo.database import DEFAULT_DATABASE
from service.store.mongo.store import MongoStore

__all__ = ["DEFAULT_DATABASE", "MongoStore"]
