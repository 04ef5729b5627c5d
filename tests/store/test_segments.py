"""Store contract: segments (save, get, list with cursor and search, member counts)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from service.domain import Profile, new_id
from service.store.base import Store
from tests.support.records import make_segment


async def test_saved_segment_reads_back_equal_with_utc_datetimes(store: Store) -> None:
    segment = make_segment(name="Élan — VIP", description=None)
    await store.save_segment(segment)

    got = await store.get_segment(segment.id)

    assert got == segment
    assert got is not None
    assert got.created_at.utcoffset() is not None
    assert got.created_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


async def test_get_segment_of_unknown_id_is_none(store: Store) -> None:
    assert await store.get_segment("no-such-segment") is None


async def test_save_segment_replaces_the_segment_with_the_same_id(store: Store) -> None:
    segment = make_segment(name="Before")
    await store.save_segment(segment)
    renamed = replace(segment, name="After", description="changed")

    await store.save_segment(renamed)

    assert await store.get_segment(segment.id) == renamed
    assert (await store.list_segments(10)).total_count == 1


async def test_segment_names_are_unique_and_the_error_names_the_name(store: Store) -> None:
    await store.save_segment(make_segment(name="Buyers"))

    with pytest.raises(ValueError, match="'Buyers'"):
        await store.save_segment(make_segment(name="Buyers"))

    assert (await store.list_segments(10)).total_count == 1


async def test_get_segments_returns_the_existing_ones_in_the_order_asked(store: Store) -> None:
    a, b, c = make_segment(), make_segment(), make_segment()
    for segment in (a, b, c):
        await store.save_segment(segment)

    got = await store.get_segments([c.id, "missing", a.id])

    assert [s.id for s in got] == [c.id, a.id]
    assert await store.get_segments([]) == []


async def test_list_segments_pages_forward_in_id_order(store: Store) -> None:
    segments = [make_segment() for _ in range(5)]
    for segment in reversed(segments):
        await store.save_segment(segment)

    first = await store.list_segments(2)
    second = await store.list_segments(2, after=first.items[-1].id)
    last = await store.list_segments(2, after=second.items[-1].id)

    assert [s.id for s in first.items + second.items + last.items] == sorted(s.id for s in segments)
    assert (first.has_next_page, second.has_next_page, last.has_next_page) == (True, True, False)
    assert (first.has_previous_page, second.has_previous_page) == (False, True)
    assert {first.total_count, second.total_count, last.total_count} == {5}


async def test_list_segments_with_first_zero_only_counts(store: Store) -> None:
    await store.save_segment(make_segment())

    page = await store.list_segments(0)

    assert page.items == []
    assert page.has_next_page is True
    assert page.total_count == 1


async def test_list_segments_refuses_a_negative_page_size_naming_it(store: Store) -> None:
    with pytest.raises(ValueError, match="-1"):
        await store.list_segments(-1)


async def test_list_segments_search_matches_a_case_insensitive_substring(store: Store) -> None:
    names = ["Summer buyers", "Winter BUYERS", "Newsletter", "Ünïcode Buyers"]
    for name in names:
        await store.save_segment(make_segment(name=name))

    page = await store.list_segments(10, search="buyers")
    unicode_page = await store.list_segments(10, search="ÜNÏ")
    paged = await store.list_segments(1, search="BUYERS")

    assert sorted(s.name for s in page.items) == [
        "Summer buyers",
        "Winter BUYERS",
        "Ünïcode Buyers",
    ]
    assert page.total_count == 3
    assert [s.name for s in unicode_page.items] == ["Ünïcode Buyers"]
    assert paged.total_count == 3
    assert paged.has_next_page is True


async def test_search_treats_regex_characters_literally(store: Store) -> None:
    await store.save_segment(make_segment(name="a.b (test)"))
    await store.save_segment(make_segment(name="axb test"))

    page = await store.list_segments(10, search="a.b (")

    assert [s.name for s in page.items] == ["a.b (test)"]


async def test_count_segment_members_counts_each_profile_once(store: Store) -> None:
    s1, s2, s3 = new_id(), new_id(), new_id()
    await store.upsert_profiles(
        [
            Profile("p1", {}, [s1]),
            Profile("p2", {}, [s1, s2]),
            Profile("p3", {}, [s2]),
            Profile("p4", {}, [s3]),
        ]
    )

    assert await store.count_segment_members([s1]) == 2
    assert await store.count_segment_members([s1, s2]) == 3
    assert await store.count_segment_members([s1, s2, s1]) == 3
    assert await store.count_segment_members(["unknown"]) == 0
    assert await store.count_segment_members([]) == 0
