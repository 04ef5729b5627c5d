"""Fixtures shared by every test package: database URLs for both store adapters.

- ``sqlite_url``: a ``sqlite:///`` URL to a fresh file in the test's tmp dir.
- ``mongodb_url`` (session): a MongoDB server URL without a database name:
  ``$SEGPORT_TEST_MONGODB_URL`` if set, otherwise mongoeco's wire server,
  started once for the session (see ``tests/support/mongo_wire.py``). With
  neither available it fails with the instructions; it never skips.
- ``mongo_database_url``: a URL naming a fresh database for one test, dropped after.

Settings for either come from :func:`tests.support.settings.make_settings`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from pymongo import MongoClient

from service.domain import new_id
from tests.support.mongo_wire import MongoTestServerUnavailable, start_mongo_wire_server


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'segport.db'}"


@pytest.fixture(scope="session")
def mongodb_url() -> Iterator[str]:
    configured = os.environ.get("SEGPORT_TEST_MONGODB_URL")
    if configured:
        yield configured
        return
    try:
        server = start_mongo_wire_server()
    except MongoTestServerUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server.url
    finally:
        server.stop()


def with_database(url: str, database: str) -> str:
    """``url`` with its path (the database name) replaced by ``database``."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


@pytest.fixture
def mongo_database_url(mongodb_url: str) -> Iterator[str]:
    database = f"segport_test_{new_id()}"
    yield with_database(mongodb_url, database)
    client: MongoClient[dict[str, object]] = MongoClient(mongodb_url, serverSelectionTimeoutMS=5000)
    try:
        client.drop_database(database)
    finally:
        client.close()
