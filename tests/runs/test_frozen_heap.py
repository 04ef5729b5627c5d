"""While runs stream, the objects from before the first are out of full collections, and
they are handed back to the collector when the last one ends."""

from __future__ import annotations

import gc

import pytest

from service.runs.heap import FrozenHeap


def test_the_first_run_freezes_and_the_last_unfreezes() -> None:
    heap = FrozenHeap()
    with heap.held():
        frozen = gc.get_freeze_count()
        assert frozen > 0
        with heap.held():
            assert gc.get_freeze_count() == frozen  # a second run freezes nothing more
        assert gc.get_freeze_count() == frozen  # one run still streams
    assert gc.get_freeze_count() == 0


def test_an_ending_run_unfreezes_even_when_it_fails() -> None:
    heap = FrozenHeap()
    with pytest.raises(RuntimeError), heap.held():
        raise RuntimeError("the run failed")
    assert gc.get_freeze_count() == 0
