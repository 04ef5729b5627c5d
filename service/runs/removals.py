"""The removal phase of a ``MIRROR`` run: take off the list what this export put there and
the segments no longer hold.

It runs once every batch is confirmed. A *leaver* is a ledger entry whose key no record
of this run took: its profile left every segment of the export, was deleted, became
invalid, or its e-mail changed (the new address is a new key, sent as new). A
profile that moved between two segments of the export keeps its key, so it is
neither removed nor re-sent. Only entries of the ledger are candidates, and of them
only memberships this export created: a contact that was on the list before the export
first sent it (``PRE_EXISTING``, learnt from the destination before the run sent it) or
that the destination would not add (``CANNOT_ADD``) has its entry dropped, and nothing
is asked; a contact put on the list by anyone else is never touched.

Each call's answer is written with its counts in one store write (the ledger
drops what was removed and marks what failed), so a killed run resumed later asks
only for what it had not recorded; asking again for a member already removed
counts once, since the destination answers "removed" for a non-member. A removal
that failed in this run is not asked again by it (the next run asks).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from service.access.ledger_seal import LedgerSeal
from service.domain import RunError
from service.plugins.api import DestinationSession, ListMember
from service.runs.errors import RunCancelled, RunFailed, RunStopped
from service.runs.mapping import SeenKeys
from service.runs.state import RunState
from service.runs.sync import SyncPlan
from service.runs.whole_list import outsiders
from service.store.base import LedgerChanges, LedgerOutcome, Store

LEDGER_PAGE = 1000
"""Ledger entries read per query while looking for leavers."""

NO_ANSWER = "the destination gave no answer for this member"


NOT_OURS = frozenset({LedgerOutcome.PRE_EXISTING, LedgerOutcome.CANNOT_ADD})
"""Entries whose contact this export did not put on the list: a leaver among them is
forgotten, never asked to be removed."""


async def leavers(
    store: Store, seal: LedgerSeal, export_id: str, seen: SeenKeys, run_no: int
) -> AsyncIterator[tuple[list[tuple[int, str]], list[int]]]:
    """Per page of the ledger, the leavers: (key id, key) of the entries no record of this
    run took whose membership this export created, and the key ids of the others (their
    entries are dropped, nothing is asked)."""
    async for entries in store.iter_ledger(export_id, batch_size=LEDGER_PAGE):
        found: list[tuple[int, str]] = []
        dropped: list[int] = []
        for entry in entries:
            if entry.outcome is LedgerOutcome.REMOVAL_FAILED and entry.run_no == run_no:
                continue  # asked already by this run (before it was resumed)
            key = seal.open(entry.sealed, entry.key_id)
            if key in seen:
                continue
            if entry.outcome in NOT_OURS:
                dropped.append(entry.key_id)
            else:
                found.append((entry.key_id, key))
        if found or dropped:
            yield found, dropped
        await asyncio.sleep(0)


async def remove_leavers(
    state: RunState,
    plan: SyncPlan,
    seen: SeenKeys,
    session: DestinationSession,
    batch_size: int,
    stopping: asyncio.Event,
    heartbeat_seconds: float,
) -> None:
    """Ask the destination to remove every leaver, ``batch_size`` per call, writing the
    run's heartbeat meanwhile (one call may take a while: it waits on the destination)."""
    size = max(1, batch_size)
    pending: list[tuple[int, str]] = []
    async with state.beating(heartbeat_seconds):
        found = leavers(plan.store, plan.seal, plan.export.id, seen, plan.run_no)
        async for keys, dropped in found:
            if dropped:
                forgotten = LedgerChanges(plan.export.id, plan.run_no, removed=dropped)
                if await state.write(publish=False, ledger=forgotten) is None:
                    raise RunFailed("The run was finished elsewhere.")
            pending.extend(keys)
            while len(pending) >= size:
                await _remove(state, plan, session, pending[:size], stopping)
                del pending[:size]
        if pending:
            await _remove(state, plan, session, pending, stopping)
        if plan.whole_list_cap is not None:
            await _remove_outsiders(state, plan, seen, session, size, stopping)


async def _remove_outsiders(
    state: RunState,
    plan: SyncPlan,
    seen: SeenKeys,
    session: DestinationSession,
    size: int,
    stopping: asyncio.Event,
) -> None:
    """A whole-list mirror: take off every other member outside the segments, provided
    there are no more of them than the run's preview showed."""
    standing = await session.read_list_standing(members=True)
    found = list(outsiders(standing.members, seen, plan.asked_already, plan.seal))
    cap = plan.whole_list_cap or 0
    if len(found) > cap:
        state.sample(
            RunError(
                code="WHOLE_LIST_GREW",
                message=f"the list holds {len(found)} members outside the export's segments, "
                f"more than the {cap} its preview showed: none of them was removed; "
                "preview the export again",
            )
        )
        return
    key_id = plan.seal.key_id
    for start in range(0, len(found), size):
        keys = [(key_id(key), key) for key in found[start : start + size]]
        await _remove(state, plan, session, keys, stopping)


async def _remove(
    state: RunState,
    plan: SyncPlan,
    session: DestinationSession,
    keys: Sequence[tuple[int, str]],
    stopping: asyncio.Event,
) -> None:
    if stopping.is_set():
        raise RunStopped()
    if state.cancel_seen:
        raise RunCancelled()
    members = [ListMember(key) for _, key in keys]
    outcomes = {o.key: o for o in await session.remove_list_members(members)}
    changes = LedgerChanges(plan.export.id, plan.run_no)
    for key_id, key in keys:
        outcome = outcomes.get(key)
        if outcome is not None and outcome.removed:
            changes.removed.append(key_id)
            continue
        changes.removal_failed.append(key_id)
        reason = NO_ANSWER if outcome is None else outcome.reason or "not removed"
        # The key is the contact's address: RunError drops it from the reason, and the
        # profile may be gone, so the error names neither.
        state.sample(RunError(code="REMOVAL_FAILED", message=reason))
    state.counts.removed_from_list += len(changes.removed)
    state.counts.removals_failed += len(changes.removal_failed)
    if await state.write(publish=True, ledger=changes) is None:
        raise RunFailed("The run was finished elsewhere.")
