"""Persistence: one contract (:mod:`service.store.base`), a SQLite and a MongoDB adapter."""

from __future__ import annotations

from service.settings import Settings
from service.store.base import Store


async def open_store(settings: Settings) -> Store:
    """The adapter the database URL names, opened (tables/collections and indexes made)."""
    store: Store
    # Only the chosen adapter is imported: embedded mode never loads the MongoDB driver.
    if settings.embedded:
        from service.store.sqlite import SQLiteStore

        store = SQLiteStore(settings.sqlite_path, write_batch_size=settings.store_write_batch_size)
    else:
        from service.store.mongo import MongoStore

        store = MongoStore(
            settings.database_url,
            write_batch_size=settings.store_write_batch_size,
            timeout_ms=settings.mongodb_timeout_ms,
        )
    await store.open()
    return store
