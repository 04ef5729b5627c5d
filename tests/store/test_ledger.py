"""Store contract: export ledgers (start/resume/reset, lookups, changes only with progress)."""

from __future__ import annotations

import pytest

from service.domain import ExportRun, ExportRunStatus, RunCounts, SyncMode, utcnow
from service.store._records import pack_key_ids, unpack_key_ids
from service.store.base import (
    LedgerChanges,
    LedgerEntry,
    LedgerOutcome,
    LedgerReset,
    RunProgress,
    Store,
)
from tests.support.records import make_export, make_run

BASIS = {"connection_id": "c1", "settings": {"listId": "l1"}, "mapping": [["e", "email"]]}
SENT, FAILED = LedgerOutcome.SENT, LedgerOutcome.REMOVAL_FAILED


def sent(*pairs: tuple[int, int]) -> list[tuple[int, bytes, int]]:
    """(key id, fingerprint) pairs as sent entries, each sealed key standing for its id."""
    return [(key_id, b"sealed-%d" % key_id, fp) for key_id, fp in pairs]


def entry(key_id: int, fp: int, outcome: LedgerOutcome = SENT, run_no: int = 1) -> LedgerEntry:
    return LedgerEntry(key_id, b"sealed-%d" % key_id, fp, outcome, run_no)


async def running(store: Store, export_id: str) -> ExportRun:
    run = make_run(export_id, status=ExportRunStatus.RUNNING, started_at=utcnow())
    await store.insert_run(run)
    return run


async def finish(store: Store, run: ExportRun) -> None:
    await store.update_run(run.id, status=ExportRunStatus.SUCCEEDED, finished_at=utcnow())


async def progress(store: Store, run: ExportRun, changes: LedgerChanges) -> ExportRun | None:
    return await store.record_run_progress(
        run.id, RunProgress(counts=RunCounts(), progress=0.5, checkpoint={}, ledger=changes)
    )


async def all_entries(store: Store, export_id: str) -> list[LedgerEntry]:
    return [e async for batch in store.iter_ledger(export_id, batch_size=2) for e in batch]


async def an_export(store: Store) -> str:
    export = make_export()
    await store.save_export(export)
    return export.id


async def test_an_export_has_no_ledger_before_its_first_ledger_run(store: Store) -> None:
    export_id = await an_export(store)
    assert await store.ledger_state(export_id) is None
    assert await store.count_ledger(export_id) == 0
    assert await store.ledger_entries(export_id, [1]) == {}
    assert await all_entries(store, export_id) == []


async def test_runs_get_ordinals_and_a_resumed_run_keeps_its_own(store: Store) -> None:
    export_id = await an_export(store)
    first = await running(store, export_id)
    state = await store.start_ledger(export_id, first.id, BASIS, LedgerReset.KEEP)
    assert (state.run_no, state.run_id, state.basis) == (1, first.id, BASIS)
    again = await store.start_ledger(export_id, first.id, {"other": 1}, LedgerReset.CLEAR)
    assert (again.run_no, again.basis) == (1, BASIS)
    await finish(store, first)
    second = await running(store, export_id)
    state = await store.start_ledger(export_id, second.id, BASIS, LedgerReset.KEEP)
    assert state.run_no == 2
    assert await store.ledger_state(export_id) == state


async def test_changes_apply_with_the_progress_write(store: Store) -> None:
    export_id = await an_export(store)
    run = await running(store, export_id)
    await store.start_ledger(export_id, run.id, BASIS, LedgerReset.KEEP)
    # Key ids are signed 64-bit: the smallest and largest are kept and ordered too.
    first = sent((-(2**63), 7), (-5, -1), (0, 0), (3, 1), (2**63 - 1, 2))
    assert await progress(store, run, LedgerChanges(export_id, 1, sent=first)) is not None
    assert await store.count_ledger(export_id) == 5
    found = await store.ledger_entries(export_id, [-5, 2**63 - 1, 42])
    assert found == {-5: entry(-5, -1), 2**63 - 1: entry(2**63 - 1, 2)}
    changes = LedgerChanges(export_id, 1, sent=sent((0, 99)), removed=[-5, 42], removal_failed=[3])
    await progress(store, run, changes)
    assert await all_entries(store, export_id) == [
        entry(-(2**63), 7),
        entry(0, 99),
        entry(3, 1, FAILED),
        entry(2**63 - 1, 2),
    ]
    later = [e async for b in store.iter_ledger(export_id, after_key_id=0) for e in b]
    assert [e.key_id for e in later] == [3, 2**63 - 1]


async def test_marked_entries_take_their_outcome_after_the_sent_ones(store: Store) -> None:
    export_id = await an_export(store)
    run = await running(store, export_id)
    await store.start_ledger(export_id, run.id, BASIS, LedgerReset.KEEP)
    await progress(store, run, LedgerChanges(export_id, 1, sent=sent((1, 10))))
    changes = LedgerChanges(
        export_id,
        1,
        sent=sent((2, 20), (3, 30)),
        marked=[(2, LedgerOutcome.PRE_EXISTING), (1, LedgerOutcome.CANNOT_ADD)],
    )
    await progress(store, run, changes)
    assert await all_entries(store, export_id) == [
        entry(1, 10, LedgerOutcome.CANNOT_ADD),
        entry(2, 20, LedgerOutcome.PRE_EXISTING),
        entry(3, 30),
    ]


async def test_a_run_that_is_not_running_changes_no_entry(store: Store) -> None:
    export_id = await an_export(store)
    run = await running(store, export_id)
    await store.start_ledger(export_id, run.id, BASIS, LedgerReset.KEEP)
    await finish(store, run)
    assert await progress(store, run, LedgerChanges(export_id, 1, sent=sent((1, 1)))) is None
    assert await store.count_ledger(export_id) == 0


async def test_forgetting_a_run_zeroes_only_its_fingerprints(store: Store) -> None:
    export_id = await an_export(store)
    first = await running(store, export_id)
    await store.start_ledger(export_id, first.id, BASIS, LedgerReset.KEEP)
    await progress(store, first, LedgerChanges(export_id, 1, sent=sent((1, 5), (2, 6))))
    await finish(store, first)
    second = await running(store, export_id)
    await store.start_ledger(export_id, second.id, BASIS, LedgerReset.KEEP)
    await progress(store, second, LedgerChanges(export_id, 2, sent=sent((2, 7), (3, 8))))
    await progress(store, second, LedgerChanges(export_id, 2, forget_run=True))
    assert [(e.key_id, e.fingerprint) for e in await all_entries(store, export_id)] == [
        (1, 5),
        (2, 0),
        (3, 0),
    ]


async def test_resets_forget_fingerprints_or_clear_the_entries(store: Store) -> None:
    export_id = await an_export(store)
    run = await running(store, export_id)
    await store.start_ledger(export_id, run.id, BASIS, LedgerReset.KEEP)
    await progress(store, run, LedgerChanges(export_id, 1, sent=sent((1, 5), (2, 6))))
    await finish(store, run)
    run = await running(store, export_id)
    mapped_again = {**BASIS, "mapping": []}
    await store.start_ledger(export_id, run.id, mapped_again, LedgerReset.FORGET_FINGERPRINTS)
    assert [(e.key_id, e.fingerprint) for e in await all_entries(store, export_id)] == [
        (1, 0),
        (2, 0),
    ]
    assert (await store.ledger_state(export_id)).basis == mapped_again  # type: ignore[union-attr]
    await finish(store, run)
    run = await running(store, export_id)
    await store.start_ledger(export_id, run.id, BASIS, LedgerReset.CLEAR)
    assert await store.count_ledger(export_id) == 0


async def test_ledgers_of_two_exports_are_apart_and_go_with_their_export(store: Store) -> None:
    one, two = await an_export(store), await an_export(store)
    for number, export_id in enumerate((one, two)):
        run = await running(store, export_id)
        await store.start_ledger(export_id, run.id, BASIS, LedgerReset.KEEP)
        changes = LedgerChanges(export_id, 1, sent=sent((number, 1), (9, 2)))
        await progress(store, run, changes)
    assert [e.key_id for e in await all_entries(store, one)] == [0, 9]
    assert await store.delete_export(one)
    assert await store.count_ledger(one) == 0
    assert await store.ledger_state(one) is None
    assert await store.count_ledger(two) == 2


async def test_the_digest_holds_every_entry_in_key_order_without_sealed_keys(
    store: Store,
) -> None:
    export_id = await an_export(store)
    assert [page async for page in store.iter_ledger_digest(export_id)] == []
    run = await running(store, export_id)
    await store.start_ledger(export_id, run.id, BASIS, LedgerReset.KEEP)
    pairs = [(2**63 - 1, 5), (-(2**63), 6), *((k, k * 10) for k in range(-3, 4))]
    changes = LedgerChanges(export_id, 1, sent=sent(*pairs), marked=[(0, LedgerOutcome.CANNOT_ADD)])
    await progress(store, run, changes)
    pages = [page async for page in store.iter_ledger_digest(export_id, batch_size=4)]
    assert [len(page.key_ids) for page in pages] == [4, 4, 1]
    for page in pages:
        assert len(page.fingerprints) == len(page.outcomes) == len(page.key_ids)
    flat = [row for page in pages for row in zip(*page, strict=True)]
    expected = sorted((k, fp, 3 if k == 0 else 0) for k, fp in pairs)
    assert flat == expected


async def test_a_run_keeps_the_list_standing_it_found_until_another_run_starts(
    store: Store,
) -> None:
    export_id = await an_export(store)
    with pytest.raises(ValueError, match="has no ledger"):
        await store.keep_list_standing(export_id, 1, [1])
    first = await running(store, export_id)
    state = await store.start_ledger(export_id, first.id, BASIS, LedgerReset.KEEP)
    assert await store.list_standing(export_id, state.run_no) is None
    members = [2**63 - 1, -(2**63), 0, -7, 12]
    await store.keep_list_standing(export_id, state.run_no, members)
    assert await store.list_standing(export_id, state.run_no) == members
    assert await store.list_standing(export_id, state.run_no + 1) is None
    # A second keep replaces the first; an empty list is kept as empty, not as none.
    await store.keep_list_standing(export_id, state.run_no, [])
    assert await store.list_standing(export_id, state.run_no) == []
    await store.keep_list_standing(export_id, state.run_no, [5, 6])
    # The run resumed: what it kept is there for it.
    await store.start_ledger(export_id, first.id, BASIS, LedgerReset.KEEP)
    assert await store.list_standing(export_id, state.run_no) == [5, 6]
    await finish(store, first)
    second = await running(store, export_id)
    later = await store.start_ledger(export_id, second.id, BASIS, LedgerReset.KEEP)
    assert await store.list_standing(export_id, state.run_no) is None
    assert await store.list_standing(export_id, later.run_no) is None


async def test_a_kept_list_standing_is_the_exports_own_and_goes_with_it(store: Store) -> None:
    one, two = await an_export(store), await an_export(store)
    for number, export_id in enumerate((one, two)):
        run = await running(store, export_id)
        await store.start_ledger(export_id, run.id, BASIS, LedgerReset.KEEP)
        await store.keep_list_standing(export_id, 1, [number, 100 + number])
    assert await store.list_standing(one, 1) == [0, 100]
    assert await store.delete_export(one)
    assert await store.list_standing(one, 1) is None
    assert await store.list_standing(two, 1) == [1, 101]


def test_key_ids_are_kept_as_eight_little_endian_bytes_each() -> None:
    key_ids = [1, -1, 2**63 - 1, -(2**63)]
    data = pack_key_ids(key_ids)
    assert data == b"".join(k.to_bytes(8, "little", signed=True) for k in key_ids)
    assert unpack_key_ids(data) == key_ids
    with pytest.raises(ValueError, match="7 bytes are not whole 8-byte key ids"):
        unpack_key_ids(data[:7])


async def test_many_keys_are_looked_up_at_once(store: Store) -> None:
    export_id = await an_export(store)
    run = await running(store, export_id)
    await store.start_ledger(export_id, run.id, BASIS, LedgerReset.KEEP)
    keys = list(range(-150, 150))
    await progress(store, run, LedgerChanges(export_id, 1, sent=sent(*[(k, 1) for k in keys])))
    found = await store.ledger_entries(export_id, [*keys, 1000])
    assert sorted(found) == keys


async def test_sync_mode_is_stored_with_the_export(store: Store) -> None:
    export = make_export()
    export.sync_mode = SyncMode.MIRROR
    await store.save_export(export)
    stored = await store.get_export(export.id)
    assert stored is not None
    assert stored.sync_mode is SyncMode.MIRROR
