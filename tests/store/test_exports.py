"""Store contract: exports (save, get, list, detach from a connection, delete, schedules)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from service.domain import ExportSchedule, ScheduleMode, new_id, utcnow
from service.store.base import Store
from tests.support.records import make_export, make_run


async def test_saved_export_reads_back_equal(store: Store) -> None:
    export = make_export()
    await store.save_export(export)

    assert await store.get_export(export.id) == export
    assert await store.get_export("missing") is None


async def test_export_without_connection_or_schedule_recurrence_reads_back_equal(
    store: Store,
) -> None:
    export = make_export(
        connection_id=None, schedule=ExportSchedule(), field_mapping=[], segment_ids=[]
    )
    await store.save_export(export)

    assert await store.get_export(export.id) == export


async def test_save_export_replaces_the_export_with_the_same_id(store: Store) -> None:
    export = make_export()
    await store.save_export(export)
    changed = replace(export, display_name="Renamed", settings={"listId": "other"})

    await store.save_export(changed)

    assert await store.get_export(export.id) == changed


async def test_get_exports_returns_the_existing_ones_in_the_order_asked(store: Store) -> None:
    a, b = make_export(), make_export()
    await store.save_export(a)
    await store.save_export(b)

    got = await store.get_exports([b.id, "missing", a.id])

    assert [e.id for e in got] == [b.id, a.id]


async def test_list_exports_searches_names_and_restricts_to_connections(store: Store) -> None:
    c1, c2 = new_id(), new_id()
    weekly = make_export(display_name="Weekly BUYERS", connection_id=c1)
    daily = make_export(display_name="Daily buyers", connection_id=c2)
    other = make_export(display_name="Newsletter", connection_id=c1)
    detached = make_export(display_name="Old buyers", connection_id=None)
    for export in (weekly, daily, other, detached):
        await store.save_export(export)

    searched = await store.list_exports(10, search="buyers")
    of_c1 = await store.list_exports(10, connection_ids=[c1])
    both = await store.list_exports(1, search="BUYERS", connection_ids=[c1, c2])
    nothing = await store.list_exports(10, connection_ids=[])

    assert {e.id for e in searched.items} == {weekly.id, daily.id, detached.id}
    assert [e.id for e in of_c1.items] == sorted([weekly.id, other.id])
    assert both.total_count == 2
    assert both.has_next_page
    assert len(both.items) == 1
    assert nothing.items == []
    assert nothing.total_count == 0


async def test_list_exports_pages_forward_in_id_order(store: Store) -> None:
    exports = [make_export() for _ in range(3)]
    for export in exports:
        await store.save_export(export)

    first = await store.list_exports(2)
    second = await store.list_exports(2, after=first.items[-1].id)

    assert [e.id for e in first.items + second.items] == sorted(e.id for e in exports)
    assert first.has_next_page
    assert not second.has_next_page
    assert second.total_count == 3


async def test_detach_exports_clears_the_connection_of_its_exports_only(store: Store) -> None:
    connection_id = new_id()
    using = [make_export(connection_id=connection_id) for _ in range(2)]
    other = make_export()
    for export in (*using, other):
        await store.save_export(export)
    now = utcnow() + timedelta(hours=1)

    assert await store.export_ids_using_connection(connection_id) == sorted(e.id for e in using)
    assert await store.detach_exports(connection_id, now) == 2

    for export in using:
        detached = await store.get_export(export.id)
        assert detached is not None
        assert detached.connection_id is None
        assert detached.updated_at == now
    assert await store.get_export(other.id) == other
    assert await store.export_ids_using_connection(connection_id) == []
    assert await store.detach_exports(connection_id, now) == 0


async def test_delete_export_removes_it_and_its_runs(store: Store) -> None:
    export, kept = make_export(), make_export()
    await store.save_export(export)
    await store.save_export(kept)
    run = make_run(export.id)
    kept_run = make_run(kept.id)
    await store.insert_run(run)
    await store.insert_run(kept_run)

    assert await store.delete_export(export.id) is True
    assert await store.delete_export(export.id) is False

    assert await store.get_export(export.id) is None
    assert await store.get_run(run.id) is None
    assert await store.active_run(export.id) is None
    assert await store.get_run(kept_run.id) == kept_run


async def test_scheduled_exports_are_those_with_a_schedule_and_a_connection(store: Store) -> None:
    own = make_export()
    following_refresh = make_export(schedule=ExportSchedule(mode=ScheduleMode.REFRESH_SCHEDULE))
    off = make_export(schedule=ExportSchedule(mode=ScheduleMode.OFF))
    detached = make_export(connection_id=None)
    for export in (own, following_refresh, off, detached):
        await store.save_export(export)

    scheduled = await store.list_scheduled_exports()

    assert [e.id for e in scheduled] == sorted([own.id, following_refresh.id])
    assert own in scheduled
