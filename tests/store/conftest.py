"""The ``store`` fixture: every contract test runs once per adapter (``sqlite``, ``mongo``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from service.store.base import Store
from tests.support.settings import MONGO_TEST_TIMEOUT_MS

# Small, so multi-batch writes are exercised with few documents (and mongoeco stays fast).
WRITE_BATCH_SIZE = 50


async def open_sqlite_store(path: Path) -> Store:
    from service.store.sqlite import SQLiteStore

    store = SQLiteStore(path, write_batch_size=WRITE_BATCH_SIZE)
    await store.open()
    return store


async def open_mongo_store(url: str) -> Store:
    from service.store.mongo import MongoStore

    store = MongoStore(url, write_batch_size=WRITE_BATCH_SIZE, timeout_ms=MONGO_TEST_TIMEOUT_MS)
    await store.open()
    return store


@pytest.fixture(params=["sqlite", "mongo"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        opened = await open_sqlite_store(tmp_path / "segport.db")
    else:
        opened = await open_mongo_store(request.getfixturevalue("mongo_database_url"))
    try:
        yield opened
    finally:
        await opened.close()
