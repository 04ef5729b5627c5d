"""Store contract: profiles (upsert, attribute names, streaming the members of segments)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from service.domain import Profile, new_id
from service.store.base import Store
from tests.store.conftest import WRITE_BATCH_SIZE


async def collect(
    store: Store,
    segment_ids: Sequence[str],
    *,
    after_profile_id: str | None = None,
    batch_size: int = 5000,
) -> list[list[Profile]]:
    return [
        batch
        async for batch in store.iter_segment_members(
            segment_ids, after_profile_id=after_profile_id, batch_size=batch_size
        )
    ]


async def test_upserted_profile_reads_back_with_its_attributes_and_segments(store: Store) -> None:
    profile = Profile(
        "cust-1",
        {"email": "zoë@example.com", "age": 41, "vip": True, "tags": ["a", "b"], "x": None},
        ["s1", "s2"],
    )

    assert await store.upsert_profiles([profile]) == 1

    assert await store.get_profile("cust-1") == profile
    assert await store.get_profile("cust-2") is None


async def test_upsert_replaces_attributes_and_segment_membership(store: Store) -> None:
    await store.upsert_profiles([Profile("p1", {"email": "a@x.io", "old": 1}, ["s1", "s2"])])

    await store.upsert_profiles([Profile("p1", {"email": "b@x.io"}, ["s2", "s3"])])

    assert await store.get_profile("p1") == Profile("p1", {"email": "b@x.io"}, ["s2", "s3"])
    assert await collect(store, ["s1"]) == []
    assert [p.id for batch in await collect(store, ["s3"]) for p in batch] == ["p1"]


async def test_upsert_of_one_id_twice_in_a_call_keeps_the_last(store: Store) -> None:
    count = await store.upsert_profiles(
        [Profile("p1", {"v": 1}, ["s1"]), Profile("p1", {"v": 2}, ["s2"])]
    )

    assert count == 1
    assert await store.get_profile("p1") == Profile("p1", {"v": 2}, ["s2"])
    assert await store.count_segment_members(["s1"]) == 0


async def test_upsert_writes_every_profile_across_several_write_batches(store: Store) -> None:
    segment = new_id()
    total = WRITE_BATCH_SIZE * 3 + 7
    profiles = [Profile(f"p{i:05d}", {"n": i}, [segment]) for i in range(total)]

    assert await store.upsert_profiles(profiles) == total

    assert await store.count_segment_members([segment]) == total
    assert await store.get_profile(f"p{total - 1:05d}") == profiles[-1]


async def test_upsert_refuses_an_empty_profile_id(store: Store) -> None:
    with pytest.raises(ValueError, match="profile id"):
        await store.upsert_profiles([Profile("", {"email": "a@x.io"}, [])])


@pytest.mark.parametrize(
    ("profile", "named"),
    [
        (Profile("p-date", {"born": datetime(2000, 1, 1, tzinfo=UTC)}, []), "'p-date'"),
        (Profile("p-set", {"tags": {"a", "b"}}, []), "'p-set'"),
        (Profile("p-seg", {}, ["s1", ""]), "''"),
    ],
)
async def test_upsert_refuses_non_json_attributes_or_bad_segment_ids_writing_nothing(
    store: Store, profile: Profile, named: str
) -> None:
    good = Profile("p-good", {"email": "a@x.io"}, ["s1"])

    with pytest.raises(ValueError, match=named):
        await store.upsert_profiles([good, profile])

    assert await store.get_profile("p-good") is None
    assert await store.profile_attribute_names() == []


async def test_attribute_names_are_every_name_seen_sorted(store: Store) -> None:
    assert await store.profile_attribute_names() == []
    await store.upsert_profiles(
        [Profile("p1", {"email": "a@x.io", "first": "A"}, []), Profile("p2", {"zip": "1"}, [])]
    )
    await store.upsert_profiles([Profile("p1", {"email": "a@x.io", "city": "Lyon"}, [])])

    assert await store.profile_attribute_names() == ["city", "email", "first", "zip"]


async def test_members_stream_in_profile_id_order_in_batches_of_the_size_asked(
    store: Store,
) -> None:
    segment = new_id()
    ids = [f"p{i:03d}" for i in range(23)]
    await store.upsert_profiles([Profile(i, {"i": i}, [segment]) for i in reversed(ids)])
    await store.upsert_profiles([Profile("outsider", {}, ["other"])])

    batches = await collect(store, [segment], batch_size=10)

    assert [len(b) for b in batches] == [10, 10, 3]
    assert [p.id for b in batches for p in b] == ids
    assert batches[0][0] == Profile("p000", {"i": "p000"}, [segment])


async def test_members_of_several_segments_appear_once_each_in_id_order(store: Store) -> None:
    s1, s2, s3 = new_id(), new_id(), new_id()
    await store.upsert_profiles(
        [
            Profile("a", {}, [s1]),
            Profile("b", {}, [s1, s2]),
            Profile("c", {}, [s2]),
            Profile("d", {}, [s1, s2, s3]),
            Profile("e", {}, [s3]),
            Profile("f", {}, [s2, s1]),
        ]
    )

    batches = await collect(store, [s1, s2, s1], batch_size=2)

    assert [[p.id for p in b] for b in batches] == [["a", "b"], ["c", "d"], ["f"]]


async def test_members_resume_strictly_after_the_given_profile_id(store: Store) -> None:
    s1, s2 = new_id(), new_id()
    await store.upsert_profiles(
        [Profile(f"p{i}", {}, [s1] if i % 2 else [s1, s2]) for i in range(8)]
    )

    resumed = await collect(store, [s1, s2], after_profile_id="p3", batch_size=3)
    single = await collect(store, [s2], after_profile_id="p2")
    past_the_end = await collect(store, [s1], after_profile_id="p9")

    assert [p.id for b in resumed for p in b] == ["p4", "p5", "p6", "p7"]
    assert [p.id for b in single for p in b] == ["p4", "p6"]
    assert past_the_end == []


async def test_members_of_an_exact_multiple_of_the_batch_size_end_without_an_empty_batch(
    store: Store,
) -> None:
    segment = new_id()
    await store.upsert_profiles([Profile(f"p{i}", {}, [segment]) for i in range(6)])

    batches = await collect(store, [segment], batch_size=3)

    assert [len(b) for b in batches] == [3, 3]


async def test_the_member_at_a_position_is_the_one_the_stream_has_there(store: Store) -> None:
    s1, s2, s3 = new_id(), new_id(), new_id()
    await store.upsert_profiles(
        [
            Profile("a", {}, [s1]),
            Profile("b", {}, [s1, s2]),
            Profile("c", {}, [s2]),
            Profile("d", {}, [s1, s2, s3]),
            Profile("e", {}, [s3]),
            Profile("f", {}, [s2, s1]),
        ]
    )
    streamed = [p.id for b in await collect(store, [s1, s2]) for p in b]

    found = [await store.segment_member_at([s1, s2, s1], n) for n in range(len(streamed) + 1)]

    assert found == [*streamed, None]  # shared members once, in id order; None past the end
    assert [await store.segment_member_at([s3], n) for n in range(3)] == ["d", "e", None]
    assert await store.segment_member_at([], 0) is None
    assert await store.segment_member_at(["unknown"], 0) is None
    with pytest.raises(ValueError, match="position must be at least 0, got -1"):
        await store.segment_member_at([s1], -1)


async def test_members_of_no_or_unknown_segments_are_nothing(store: Store) -> None:
    await store.upsert_profiles([Profile("p1", {}, ["s1"])])

    assert await collect(store, []) == []
    assert await collect(store, ["unknown"]) == []


async def test_members_refuse_a_batch_size_below_one(store: Store) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        await collect(store, ["s1"], batch_size=0)


async def test_streaming_members_while_others_read_and_write_is_safe(store: Store) -> None:
    segment = new_id()
    await store.upsert_profiles([Profile(f"a{i:03d}", {"i": i}, [segment]) for i in range(120)])

    async def stream() -> list[str]:
        return [p.id for b in await collect(store, [segment], batch_size=7) for p in b]

    async def write() -> int:
        # Profiles after the stream's range, and outside the segment: neither changes it.
        return await store.upsert_profiles(
            [Profile(f"b{i:03d}", {"j": i}, ["elsewhere"]) for i in range(120)]
        )

    streamed, written, counted, names = await asyncio.gather(
        stream(), write(), store.count_segment_members([segment]), store.profile_attribute_names()
    )

    assert streamed == [f"a{i:03d}" for i in range(120)]
    assert written == 120
    assert counted == 120
    assert "i" in names
    assert await store.count_segment_members(["elsewhere"]) == 120


async def test_members_come_back_exactly_whatever_their_ids_and_attributes_hold(
    store: Store,
) -> None:
    # Characters that mean something in JSON or SQL text, and some that are not ASCII.
    segment = new_id()
    ids = ['quote"d', "back\\slash", "comma,]bracket[", "new\nline", "é✓😀", "plain"]
    profiles = [
        Profile(
            pid,
            {"v": pid, "list": [1, 2.5, None, True, "],["], "nested": {"k": '"}'}},
            [segment],
        )
        for pid in ids
    ]
    await store.upsert_profiles(profiles)

    batches = await collect(store, [segment], batch_size=4)

    assert [len(b) for b in batches] == [4, 2]
    assert [p for b in batches for p in b] == sorted(profiles, key=lambda p: p.id)
