"""Memory is handed back once a crowd of subscriptions has closed (issue 14).

Closed websocket connections are freed in reference cycles and glibc keeps the
freed heap; :class:`FreedMemoryReturn` makes a full collection and a
``malloc_trim(0)`` when the number of open subscriptions has fallen by a lot,
after the closing stops, at most once per interval.
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from contextlib import ExitStack

from service.api.subscription_slots import SubscriptionSlots
from service.observability.collector import (
    FreedMemoryReturn,
    glibc_malloc_trim,
    return_freed_memory,
)

LIMIT = 100


class Returns:
    """Records the loop's time of each return."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.made = asyncio.Event()

    def __call__(self) -> None:
        self.times.append(asyncio.get_running_loop().time())
        self.made.set()

    async def next(self) -> None:
        await asyncio.wait_for(self.made.wait(), timeout=10)
        self.made.clear()


def open_subscriptions(stack: ExitStack, slots: SubscriptionSlots, count: int) -> list[ExitStack]:
    held = []
    for n in range(count):
        one = ExitStack()
        one.enter_context(slots.hold(f"user-{n % 3}", LIMIT))
        held.append(one)
        stack.callback(one.close)
    return held


async def test_a_return_follows_a_crowd_leaving_not_a_few() -> None:
    returns = Returns()
    memory = FreedMemoryReturn(crowd=4, interval=60, quiet=0.01, give_back=returns)
    slots = SubscriptionSlots(on_change=memory.watch)
    with ExitStack() as stack:
        held = open_subscriptions(stack, slots, 8)
        for one in held[:3]:  # fewer than the crowd
            one.close()
        await asyncio.sleep(0.05)
        assert returns.times == []

        for one in held[3:6]:  # six of eight gone: a crowd, and three quarters
            one.close()
        await returns.next()
        assert len(returns.times) == 1

        for one in held[6:]:  # the last two: not a crowd since the return
            one.close()
        await asyncio.sleep(0.05)
        assert len(returns.times) == 1


async def test_returns_are_at_least_an_interval_apart() -> None:
    returns = Returns()
    memory = FreedMemoryReturn(crowd=2, interval=0.3, quiet=0.01, give_back=returns)
    slots = SubscriptionSlots(on_change=memory.watch)
    for _ in range(2):
        with ExitStack() as stack:
            open_subscriptions(stack, slots, 4)
        await returns.next()

    assert returns.times[1] - returns.times[0] >= 0.3


async def test_a_return_waits_for_the_crowd_to_stop_leaving() -> None:
    returns = Returns()
    memory = FreedMemoryReturn(crowd=2, interval=60, quiet=0.2, give_back=returns)
    slots = SubscriptionSlots(on_change=memory.watch)
    with ExitStack() as stack:
        held = open_subscriptions(stack, slots, 6)
        for one in held[:3]:  # due 0.2 s from now, unless more leave
            one.close()
        await asyncio.sleep(0.1)
        last_close = asyncio.get_running_loop().time()
        for one in held[3:]:
            one.close()
        await returns.next()

    assert slots.any_open() is False
    assert returns.times[0] - last_close >= 0.2


def test_the_real_return_frees_cycles_and_trims_the_c_heap() -> None:
    class Node:
        other: Node

    first, second = Node(), Node()
    first.other, second.other = second, first
    gone = weakref.ref(first)
    del first, second
    gc.disable()  # only the return's own collection may free them
    try:
        assert gone() is not None
        trim = glibc_malloc_trim()
        assert trim is not None  # this machine's (and CI's) C library is glibc
        return_freed_memory(trim)
    finally:
        gc.enable()
    assert gone() is None
