"""The cyclic garbage collector of a serving process: what start-up built is left alone.

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
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000
"""Allocations between passes over the youngest generation (CPython's default: 700)."""


def settle_after_start_up() -> None:
    """Collect once, freeze what is left, and space the young passes (idempotent)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
