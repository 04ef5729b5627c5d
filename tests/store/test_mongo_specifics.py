"""MongoDB adapter specifics: the database named by the URL, URL errors without secrets,
the TTL index that keeps expired OAuth states for the grace period, ledger journals a
dead process left, and list standings kept in parts."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from pymongo import MongoClient

from service.domain import Export, ExportRun, ExportRunStatus, utcnow
from service.store.base import LedgerChanges, LedgerReset
from service.store.mongo import MongoStore
from service.store.mongo import ledger as mongo_ledger
from service.store.mongo.ledger import JOURNAL_FIELD, journal
from service.store.rules import OAUTH_STATE_GRACE
from tests.support.records import make_connection, make_export, make_run, make_segment
from tests.support.settings import MONGO_TEST_TIMEOUT_MS


async def test_the_store_uses_the_database_named_in_the_url(mongo_database_url: str) -> None:
    store = MongoStore(mongo_database_url, write_batch_size=50, timeout_ms=MONGO_TEST_TIMEOUT_MS)
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
    store = MongoStore(mongo_database_url, write_batch_size=50, timeout_ms=MONGO_TEST_TIMEOUT_MS)
    await store.open()
    await store.close()

    database = urlsplit(mongo_database_url).path.strip("/")
    client: MongoClient[dict[str, object]] = MongoClient(mongo_database_url)
    try:
        indexes = client[database]["oauth_states"].index_information()
    finally:
        client.close()
    assert indexes["expire"]["expireAfterSeconds"] == OAUTH_STATE_GRACE.total_seconds()


async def test_ledger_changes_journalled_but_not_applied_are_applied_by_the_next_reader(
    mongo_database_url: str,
) -> None:
    """A process that died between the run's write (checkpoint and journal, one document)
    and applying the journal: the confirmed changes are not lost, nor applied twice."""
    store = MongoStore(mongo_database_url, write_batch_size=50, timeout_ms=MONGO_TEST_TIMEOUT_MS)
    await store.open()
    try:
        export, run = await a_running_ledger(store)
        changes = LedgerChanges(export.id, 1, sent=[(7, b"sealed-7", 70), (8, b"sealed-8", 80)])
        # What record_run_progress writes first, without what it does next.
        left = journal(changes)
        await store._db["runs"].update_one({"_id": run.id}, {"$set": {JOURNAL_FIELD: left}})
        assert await store._db["ledger_entries"].count_documents({"e": export.id}) == 0

        state = await store.ledger_state(export.id)  # a reader settles first
        assert state is not None
        assert await store.count_ledger(export.id) == 2
        found = await store.ledger_entries(export.id, [7, 8])
        assert {k: e.fingerprint for k, e in found.items()} == {7: 70, 8: 80}
        stored = await store._db["runs"].find_one({"_id": run.id})
        assert stored is not None
        assert JOURNAL_FIELD not in stored
        await store.ledger_state(export.id)
        assert await store.count_ledger(export.id) == 2
    finally:
        await store.close()


async def test_a_list_standing_is_kept_in_parts_and_a_part_missing_reads_as_none(
    mongo_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past one document's worth of key ids the standing takes several documents; a write
    that stopped before its last part is not taken for a whole standing."""
    monkeypatch.setattr(mongo_ledger, "STANDING_PART", 2)
    store = MongoStore(mongo_database_url, write_batch_size=50, timeout_ms=MONGO_TEST_TIMEOUT_MS)
    await store.open()
    try:
        export, _ = await a_running_ledger(store)
        members = [5, -(2**63), 2**63 - 1, 0, 9]
        await store.keep_list_standing(export.id, 1, members)
        parts = store._db["ledger_standings"]
        assert await parts.count_documents({"e": export.id}) == 3
        assert await store.list_standing(export.id, 1) == members
        await parts.delete_one({"e": export.id, "p": 2})
        assert await store.list_standing(export.id, 1) is None
    finally:
        await store.close()


async def test_a_connection_document_stored_before_ways_to_connect_reads_without_one(
    mongo_database_url: str,
) -> None:
    store = MongoStore(mongo_database_url, write_batch_size=50, timeout_ms=MONGO_TEST_TIMEOUT_MS)
    await store.open()
    try:
        connection = make_connection(auth_kind="oauth2")
        await store.save_connection(connection)
        # As documents were written before auth kinds: no field at all.
        await store._db["connections"].update_one(
            {"_id": connection.id}, {"$unset": {"auth_kind": ""}}
        )
        stored = await store.get_connection(connection.id)
        assert stored is not None
        assert stored.auth_kind is None
        assert stored.display_name == connection.display_name
    finally:
        await store.close()


async def a_running_ledger(store: MongoStore) -> tuple[Export, ExportRun]:
    """An export whose run is RUNNING and has started on its ledger."""
    export = make_export()
    await store.save_export(export)
    run = make_run(export.id, status=ExportRunStatus.RUNNING, started_at=utcnow())
    await store.insert_run(run)
    await store.start_ledger(export.id, run.id, {"b": 1}, LedgerReset.KEEP)
    return export, run
