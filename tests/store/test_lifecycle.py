"""Store contract: opening is idempotent and an open store answers ping."""

from __future__ import annotations

from service.store.base import Store
from tests.support.records import make_segment


async def test_an_open_store_answers_ping(store: Store) -> None:
    await store.ping()


async def test_opening_an_open_store_again_keeps_its_data(store: Store) -> None:
    segment = make_segment()
    await store.save_segment(segment)

    await store.open()

    assert await store.get_segment(segment.id) == segment
