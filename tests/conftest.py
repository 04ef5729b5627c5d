"""Fixtures shared by every test package: database URLs for both store adapters.

- ``sqlite_url``: a ``sqlite:///`` URL to a fresh file in the test's tmp dir.
- ``mongodb_url`` (session): ``mongodb://127.0.0.1:<port>/<unique db>?directConnection=true``.
  The server is ``$SEGPORT_TEST_MONGODB_URL`` if set, otherwise mongoeco's wire
  server, started once for the session (see ``tests/support/mongo_wire.py``).
  With neither available it fails with the instructions; it never skips.
- ``mongo_database_url``: the same server, a fresh database for one test, dropped after.

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


def with_database(url: str, database: str) -> str:
    """``url`` with its path (the database name) replaced by ``database``."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def database_of(url: str) -> str:
    return urlsplit(url).path.strip("/")


def drop_database(url: str) -> None:
    client: MongoClient[dict[str, object]] = MongoClient(url, serverSelectionTimeoutMS=5000)
    try:
        client.drop_database(database_of(url))
    finally:
        client.close()


@pytest.fixture(scope="session")
def mongodb_server_url() -> Iterator[str]:
    """The MongoDB server for this session (a URL whose database is not meant to be used)."""
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


@pytest.fixture(scope="session")
def mongodb_url(mongodb_server_url: str) -> Iterator[str]:
    """``mongodb://host:port/<unique database>?...`` for this session, dropped at its end.

    The database is always a fresh ``segport_test_*`` one, even on a server
    given by ``SEGPORT_TEST_MONGODB_URL``, so tests never touch real data.
    """
    url = with_database(mongodb_server_url, f"segport_test_{new_id()}")
    yield url
    drop_database(url)


@pytest.fixture
def mongo_database_url(mongodb_server_url: str) -> Iterator[str]:
    """Like ``mongodb_url`` but a fresh database for one test, dropped after it."""
    url = with_database(mongodb_server_url, f"segport_test_{new_id()}")
    yield url
    drop_database(url)
