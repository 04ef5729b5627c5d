"""The cyclic garbage collector of a serving process, and memory handed back after a crowd.

What start-up built is left alone:

Serving an operation makes no reference cycles (see tests/api/test_request_garbage.py),
so the collector has little to free; what it cost was walking the heap. Two settings,
made once the app has started:

- everything start-up built (the schema, the plugins, the settings, imported modules)
  is frozen out of the collector's generations, so a full pass walks only what was
  made since;
- the youngest generation is collected every :data:`YOUNG_THRESHOLD` allocations
  instead of 700: an operation's objects live as long as the operation, and with many
  operations in flight the default promoted them, alive, into the older generations,
  whose passes then grew with the number of clients. Objects not in cycles are freed
  by reference counting whatever the threshold; only cycles wait for a pass.

And when many subscriptions close (:class:`FreedMemoryReturn`): a websocket's
transport, its HTTP protocol and the websocket protocol (uvicorn's and
websockets') are freed in reference cycles, so a thousand closed connections
waited for a full pass the spaced thresholds rarely make; then glibc keeps the
freed heap. A full collection and ``malloc_trim(0)`` return both
(docs/performance.md, issue 14).
"""

from __future__ import annotations

import asyncio
import contextvars
import ctypes
import ctypes.util
import functools
import gc
import platform
import time
from collections.abc import Callable

import structlog

log = structlog.get_logger(__name__)

YOUNG_THRESHOLD = 50_000
"""Allocations between passes over the youngest generation (CPython's default: 700)."""


def settle_after_start_up() -> None:
    """Collect once, freeze what is left, and space the young passes (idempotent)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


CROWD_GONE = 200
"""Subscriptions that must have closed (and at least half of the most open since the last
return) before memory is handed back."""
RETURN_INTERVAL_SECONDS = 5.0
"""At most one return in that time (a full collection and a trim cost a few tens of
milliseconds of the event loop: 18-40 ms measured after 500 and 1,000 subscriptions)."""
QUIET_SECONDS = 1.0
"""How long no subscription must have changed before the return (a crowd leaves over a few
seconds)."""


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (None on musl, macOS: nothing to tune there).
    Looked up once per process: finding it reads the linker's cache (about 1.3 ms), and
    every opening of the services and every memory return asks."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    name = ctypes.util.find_library("c")
    return None if name is None else ctypes.CDLL(name)


def glibc_malloc_trim() -> Callable[[], object] | None:
    """glibc's ``malloc_trim(0)``: hands the free parts of the C heap back to the system.

    None where the C library is not glibc (musl, macOS): nothing to call there.
    """
    libc = _glibc()
    trim = None if libc is None else getattr(libc, "malloc_trim", None)
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


M_MMAP_THRESHOLD = -3
"""glibc's ``mallopt`` parameter number for the mapping threshold (malloc.h)."""
MAPPED_BLOCK_BYTES = 128 * 1024
"""Blocks from this size up get a mapping of their own (glibc's initial threshold)."""


def map_large_blocks() -> bool:
    """Have glibc give every block of :data:`MAPPED_BLOCK_BYTES` or more a mapping of its
    own, unmapped when freed; True when it took the setting.

    By default glibc raises that threshold each time such a block is freed (up to
    32 MiB), after which large blocks come from the heap, where freed ones mostly stay.
    A run frees large blocks all the time (each request body, 3.5 MB for 40,000
    contacts, and lists of 40,000 records): a 1,000,000-profile export peaked 20 MB
    higher that way, 1.36 times a 100,000-profile one's instead of 1.28
    (docs/performance.md). Setting the threshold fixes it where it starts.
    """
    libc = _glibc()
    mallopt = None if libc is None else getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MAPPED_BLOCK_BYTES))


def return_freed_memory(trim: Callable[[], object] | None) -> None:
    """A full collection (what closed connections left in cycles), then the C heap's trim."""
    started = time.perf_counter()
    collected = gc.collect()
    if trim is not None:
        trim()
    log.info(
        "freed_memory_returned",
        collected=collected,
        trimmed=trim is not None,
        seconds=round(time.perf_counter() - started, 4),
    )


class FreedMemoryReturn:
    """Hands freed memory back once the number of open subscriptions has fallen by a lot.

    Told every change of the number open (:meth:`watch`). When it has fallen by
    ``crowd`` or more from the most open since the last return, and to half of
    that or less, memory is returned once the closing has stopped for ``quiet``
    seconds (a crowd leaves over a few seconds; waiting at most ``interval``),
    on the event loop, never inside a closing subscription, and at most once per
    ``interval`` seconds.
    """

    def __init__(
        self,
        *,
        crowd: int = CROWD_GONE,
        interval: float = RETURN_INTERVAL_SECONDS,
        quiet: float = QUIET_SECONDS,
        give_back: Callable[[], None] | None = None,
    ) -> None:
        self.crowd = crowd
        self.interval = interval
        self.quiet = quiet
        self._give_back = give_back or (lambda: return_freed_memory(glibc_malloc_trim()))
        self._most = 0
        self._now = 0
        self._last: float | None = None
        self._asked: float = 0.0
        self._pending: asyncio.TimerHandle | None = None
        self._due_at = 0.0
        """When the pending return is due: moved later while the crowd keeps leaving, the
        timer itself left alone (a new timer per closing subscription made hundreds of
        cancelled timers, each outliving the crowd in the loop's heap)."""

    def watch(self, open_now: int) -> None:
        """The number of subscriptions open now (after one opened or closed)."""
        self._now = open_now
        self._most = max(self._most, open_now)
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._pending is not None:
            if now - self._asked < self.interval:
                # Still leaving: wait for the quiet after the last one.
                self._due_at = self._due(now)
            return
        if self._most - open_now < self.crowd or open_now > self._most // 2:
            return
        self._asked = now
        self._due_at = self._due(now)
        self._pending = self._call_at(loop, self._due_at)

    def _call_at(self, loop: asyncio.AbstractEventLoop, when: float) -> asyncio.TimerHandle:
        # In a context of its own: not the closing request's (its request id, its logs).
        return loop.call_at(when, self._ring, context=contextvars.Context())

    def _ring(self) -> None:
        loop = asyncio.get_running_loop()
        if loop.time() < self._due_at:
            self._pending = self._call_at(loop, self._due_at)  # moved since it was set
            return
        self._return()

    def _due(self, now: float) -> float:
        soonest = now + self.quiet
        return soonest if self._last is None else max(soonest, self._last + self.interval)

    def _return(self) -> None:
        self._pending = None
        self._last = asyncio.get_running_loop().time()
        self._most = self._now
        self._give_back()
