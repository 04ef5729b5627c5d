"""Store contract: segment member counts kept as profiles are written (issue 14, item 2).

``segment_member_counts`` reads counts the writes keep; these tests hold them to
what a count of the memberships says after every kind of write: new profiles,
a profile moved out of a segment, imports, and many writers at once.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path

import orjson

from service.domain import Profile
from service.store.base import Store
from service.store.importer import ProfileImporter
from tests.store.conftest import WRITE_BATCH_SIZE, open_mongo_store, open_sqlite_store
from tests.support.records import make_segment


async def recount(store: Store, profile_ids: list[str]) -> Counter[str]:
    """The memberships as the profiles themselves say, counted."""
    counts: Counter[str] = Counter()
    for profile_id in profile_ids:
        profile = await store.get_profile(profile_id)
        if profile is not None:
            counts.update(profile.segment_ids)
    return counts


async def test_counts_follow_new_and_rewritten_profiles(store: Store) -> None:
    assert await store.segment_member_counts(["s1", "s2"]) == {"s1": 0, "s2": 0}
    await store.upsert_profiles(
        [Profile("p1", {}, ["s1", "s2"]), Profile("p2", {}, ["s1"]), Profile("p3", {}, [])]
    )

    assert await store.segment_member_counts(["s1", "s2", "s3"]) == {"s1": 2, "s2": 1, "s3": 0}
    assert await store.count_segment_members(["s1"]) == 2
    assert await store.segment_member_counts([]) == {}
    assert await store.segment_member_counts(["s2", "s2"]) == {"s2": 1}


async def test_a_profile_removed_from_a_segment_leaves_its_count(store: Store) -> None:
    await store.upsert_profiles([Profile("p1", {}, ["s1", "s2"]), Profile("p2", {}, ["s1"])])

    await store.upsert_profiles([Profile("p1", {"v": 2}, ["s2", "s3"])])
    assert await store.segment_member_counts(["s1", "s2", "s3"]) == {"s1": 1, "s2": 1, "s3": 1}

    await store.upsert_profiles([Profile("p1", {}, []), Profile("p2", {}, [])])
    assert await store.segment_member_counts(["s1", "s2", "s3"]) == {"s1": 0, "s2": 0, "s3": 0}


async def test_writing_the_same_profiles_again_changes_no_count(store: Store) -> None:
    profiles = [Profile(f"p{i}", {"i": i}, ["s1"] if i % 2 else ["s1", "s2"]) for i in range(120)]
    await store.upsert_profiles(profiles)
    await store.upsert_profiles(profiles)
    # One id twice in a call counts once, as its last occurrence.
    await store.upsert_profiles([Profile("p0", {}, ["s3"]), Profile("p0", {}, ["s1", "s2"])])

    assert await store.segment_member_counts(["s1", "s2", "s3"]) == {"s1": 120, "s2": 60, "s3": 0}


async def test_imports_keep_the_counts(store: Store, tmp_path: Path) -> None:
    vip = make_segment(name="VIP")
    await store.save_segment(vip)
    first = tmp_path / "first.jsonl"
    first.write_bytes(
        b"".join(
            orjson.dumps({"id": f"p{n:03}", "segments": ["VIP"] if n % 3 == 0 else []}) + b"\n"
            for n in range(90)
        )
    )
    await ProfileImporter(store, batch_size=7, segments=["Newsletter"]).import_file(first)
    newsletter = next(s for s in (await store.list_segments(10)).items if s.name == "Newsletter")
    # The second file takes a third of them out of VIP and adds others.
    second = tmp_path / "second.jsonl"
    second.write_bytes(
        b"".join(
            orjson.dumps({"id": f"p{n:03}", "segments": ["VIP"] if n % 2 == 0 else []}) + b"\n"
            for n in range(0, 120, 3)
        )
    )
    await ProfileImporter(store, batch_size=5).import_file(second)

    expected = await recount(store, [f"p{n:03}" for n in range(120)])
    assert await store.segment_member_counts([vip.id, newsletter.id]) == {
        vip.id: expected[vip.id],
        newsletter.id: expected[newsletter.id],
    }
    assert expected[vip.id] == 20  # p000, p006, ... p114
    assert expected[newsletter.id] == 60  # p001, p002, p004, ... (not rewritten by the second)


async def test_counts_stay_exact_under_concurrent_writers(store: Store) -> None:
    segments = [f"s{i}" for i in range(6)]
    ids = [f"p{i:03d}" for i in range(3 * WRITE_BATCH_SIZE)]
    rng = random.Random(14)

    def batch() -> list[Profile]:
        chosen = rng.sample(ids, 2 * WRITE_BATCH_SIZE)
        return [
            Profile(i, {"w": rng.random()}, rng.sample(segments, rng.randint(0, 3))) for i in chosen
        ]

    # Eight writers, each several multi-batch calls over the same profiles.
    async def writer() -> None:
        for _ in range(4):
            await store.upsert_profiles(batch())

    await asyncio.gather(*(writer() for _ in range(8)))

    expected = await recount(store, ids)
    assert await store.segment_member_counts(segments) == {s: expected[s] for s in segments}
    assert sum(expected.values()) > 0


async def test_a_sqlite_file_from_before_the_counts_gets_them_on_open(tmp_path: Path) -> None:
    path = tmp_path / "segport.db"
    store = await open_sqlite_store(path)
    await store.upsert_profiles([Profile(f"p{i}", {}, ["s1", "s2"][: 1 + i % 2]) for i in range(9)])
    await store.close()
    # A file as an earlier version left it: no counts table.
    import sqlite3

    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE segment_member_counts")

    reopened = await open_sqlite_store(path)
    try:
        assert await reopened.segment_member_counts(["s1", "s2"]) == {"s1": 9, "s2": 4}
        await reopened.upsert_profiles([Profile("p0", {}, ["s2"])])
        assert await reopened.segment_member_counts(["s1", "s2"]) == {"s1": 8, "s2": 5}
    finally:
        await reopened.close()
    again = await open_sqlite_store(path)  # counted once: opening again changes nothing
    try:
        assert await again.segment_member_counts(["s1", "s2"]) == {"s1": 8, "s2": 5}
    finally:
        await again.close()


async def test_a_mongo_database_from_before_the_counts_gets_them_on_open(
    mongo_database_url: str,
) -> None:
    from pymongo import AsyncMongoClient

    store = await open_mongo_store(mongo_database_url)
    await store.upsert_profiles([Profile(f"p{i}", {}, ["s1", "s2"][: 1 + i % 2]) for i in range(9)])
    await store.close()
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongo_database_url)
    try:
        db = client.get_default_database()
        await db["segment_member_counts"].drop()
        await db["store_migrations"].drop()
    finally:
        await client.close()

    reopened = await open_mongo_store(mongo_database_url)
    try:
        assert await reopened.segment_member_counts(["s1", "s2"]) == {"s1": 9, "s2": 4}
        await reopened.upsert_profiles([Profile("p0", {}, ["s2"])])
    finally:
        await reopened.close()
    again = await open_mongo_store(mongo_database_url)
    try:
        assert await again.segment_member_counts(["s1", "s2"]) == {"s1": 8, "s2": 5}
    finally:
        await again.close()
