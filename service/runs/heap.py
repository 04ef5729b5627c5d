"""Keeping a run's garbage collections small.

A run allocates millions of short-lived objects (profiles, records), and the ones that
survive a while (the batches waiting to be sent) make CPython's cyclic collector run
full collections every few tens of thousands of profiles. A full collection visits
every tracked object of the process: the modules, the wiring and the plugins as much as
the run's own data (about a second per 300,000 profiles, docs/performance.md). While a
run streams, :class:`FrozenHeap` moves the objects that existed when it began into the
collector's permanent generation (``gc.freeze``), so full collections visit only what
was made since; when the last run ends they are handed back (``gc.unfreeze``), so
garbage that was frozen is still collected afterwards. A process that had frozen its
start-up before the first run (a serving process, :mod:`service.observability.collector`)
is frozen again once that garbage is collected, so serving keeps its small passes.

While runs stream, the youngest generation is also collected every
:data:`RUN_YOUNG_THRESHOLD` allocations instead of CPython's 700, as a serving process
does: a run's objects are freed by reference counting, and the passes the default made
(11,000 young, 1,000 middle and 91 full ones in a 1,000,000-profile run) cost a tenth
of its time; the thresholds are put back when the last run ends.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

RUN_YOUNG_THRESHOLD = 50_000
"""Allocations between passes over the youngest generation while runs stream."""


class FrozenHeap:
    """Counts the runs streaming in this process; the first freezes, the last unfreezes."""

    def __init__(self) -> None:
        self._holders = 0
        self._frozen_before = False
        self._thresholds = gc.get_threshold()

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        if self._holders == 0:
            self._frozen_before = gc.get_freeze_count() > 0
            gc.freeze()
            self._thresholds = young, middle, old = gc.get_threshold()
            gc.set_threshold(max(young, RUN_YOUNG_THRESHOLD), middle, old)
        self._holders += 1
        try:
            yield
        finally:
            self._holders -= 1
            if self._holders == 0:
                gc.set_threshold(*self._thresholds)
                gc.unfreeze()
                if self._frozen_before:
                    gc.collect()
                    gc.freeze()
