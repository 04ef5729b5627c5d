"""MongoDB adapter specifics: the database named by the URL, URL errors without secrets,
and the TTL index that keeps expired OAuth states for the grace period."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from pymongo import MongoClient

from service.store.mongo import MongoStore
from service.store.rules import OAUTH_STATE_GRACE
from tests.support.records import make_segment


async def test_the_store_uses_the_database_named_in_the_url(mongo_database_url: str) -> None:
    store = MongoStore(mongo_database_url, write_batch_size=50, timeout_ms=5000)
    await store.open()
    segment = make_segment()
    try:
        await store.save_segment(segment)
    finally:
        await store.close()

    database = urlsplit(mongo_database_url).path.strip("/")
    client: MongoClient[dict[str, object]] = MongoClient(mongo_database_url)
    try:
        assert client[database]["segments"].find_one({"_id": segment.id}) is not None
    finally:
        client.close()


@pytest.mark.parametrize(
    "url",
    [
        "mongodb://user:s3cret-pass@db.example.com:notaport/segport",
        "mongodb://us:er:s3cret-pass@db.example.com/segport",
    ],
)
async def test_a_malformed_url_is_refused_clearly_without_revealing_the_password(
    url: str,
) -> None:
    store = MongoStore(url, write_batch_size=50, timeout_ms=5000)

    with pytest.raises(ValueError, match="SEGPORT_DATABASE_URL") as raised:
        await store.open()

    assert "s3cret-pass" not in str(raised.value)


async def test_an_unopened_store_says_it_must_be_opened() -> None:
    store = MongoStore("mongodb://127.0.0.1:1/x", write_batch_size=50, timeout_ms=5000)

    with pytest.raises(RuntimeError, match="open"):
        await store.get_segment("s1")


def test_the_session_url_names_a_fresh_test_database(mongodb_url: str) -> None:
    assert urlsplit(mongodb_url).path.startswith("/segport_test_")


async def test_expired_oauth_states_are_removed_after_the_grace_period(
    mongo_database_url: str,
) -> None:
    store = MongoStore(mongo_database_url, write_batch_size=50, timeout_ms=5000)
    await store.open()
    await store.close()

    database = urlsplit(mongo_database_url).path.strip("/")
    client: MongoClient[dict[str, object]] = MongoClient(mongo_database_url)
    try:
        indexes = client[database]["oauth_states"].index_information()
    finally:
        client.close()
    assert indexes["expire"]["expireAfterSeconds"] == OAUTH_STATE_GRACE.total_seconds()
