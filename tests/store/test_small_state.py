"""Store contract: OAuth states, the refresh schedule and once-only claims."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

from service.domain import Frequency, OAuthState, Recurrence, RefreshSchedule, new_id, utcnow
from service.store.base import Store
from tests.support.records import make_oauth_state


async def test_an_oauth_state_can_be_consumed_once(store: Store) -> None:
    state = replace(make_oauth_state(new_id()), allow_account_change=True)
    await store.save_oauth_state(state)

    first = await store.consume_oauth_state(state.state)
    second = await store.consume_oauth_state(state.state)

    assert first == state
    assert second is None


async def test_an_expired_oauth_state_is_still_returned_so_the_caller_can_say_so(
    store: Store,
) -> None:
    now = utcnow()
    state: OAuthState = make_oauth_state(
        new_id(), created_at=now - timedelta(minutes=20), expires_at=now - timedelta(minutes=10)
    )
    await store.save_oauth_state(state)

    assert await store.consume_oauth_state(state.state) == state


async def test_an_unknown_oauth_state_is_none(store: Store) -> None:
    assert await store.consume_oauth_state("never-issued") is None


async def test_the_refresh_schedule_is_off_until_saved(store: Store) -> None:
    assert await store.get_refresh_schedule() == RefreshSchedule()
    assert (await store.get_refresh_schedule()).enabled is False


async def test_a_saved_refresh_schedule_reads_back_equal(store: Store) -> None:
    schedule = RefreshSchedule(
        enabled=True,
        recurrence=Recurrence(
            frequency=Frequency.WEEKLY,
            times=["01:15", "13:15"],
            timezone="America/New_York",
            weekdays=[1, 3, 5],
        ),
        updated_by="admin@example.com",
        updated_at=utcnow(),
    )

    await store.save_refresh_schedule(schedule)
    await store.save_refresh_schedule(schedule)

    assert await store.get_refresh_schedule() == schedule


async def test_claim_once_is_true_only_for_the_first_caller_of_a_key(store: Store) -> None:
    expires = utcnow() + timedelta(minutes=5)

    assert await store.claim_once("tick@2030-01-01T02:00", expires) is True
    assert await store.claim_once("tick@2030-01-01T02:00", expires) is False
    assert await store.claim_once("tick@2030-01-01T02:30", expires) is True


async def test_an_expired_claim_can_be_claimed_again(store: Store) -> None:
    assert await store.claim_once("tick", utcnow() - timedelta(seconds=1)) is True

    assert await store.claim_once("tick", utcnow() + timedelta(minutes=5)) is True
    assert await store.claim_once("tick", utcnow() + timedelta(minutes=5)) is False


async def test_concurrent_claims_of_one_key_have_one_winner(store: Store) -> None:
    expires = utcnow() + timedelta(minutes=5)

    results = await asyncio.gather(*(store.claim_once("due@02:00", expires) for _ in range(5)))

    assert sorted(results) == [False, False, False, False, True]
