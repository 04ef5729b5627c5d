"""The embedded store: one SQLite file (WAL), for ``segport serve`` and ``segport demo``.

The API and the in-process run runner share one :class:`SQLiteStore` from one
event loop. Its parts:

- :mod:`~service.store.sqlite.schema`: the tables and indexes;
- :mod:`~service.store.sqlite.codec`: documents to rows and back;
- :mod:`~service.store.sqlite.database`: the writer and reader connections,
  each on its own thread, and their transactions;
- :mod:`~service.store.sqlite.queries`: query builders the aggregates share;
- one module per aggregate (segments, profiles, connections and OAuth states,
  exports, runs, small state), each a part of :class:`SQLiteStore`;
- :mod:`~service.store.sqlite.store`: the class that joins them.

Rules the MongoDB store shares live in :mod:`service.store.rules`.
"""

from __future__ import annotations

from service.store.sqlite.store import SQLiteStore

__all__ = ["SQLiteStore"]
