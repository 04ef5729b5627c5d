"""While runs stream, the objects from before the first are out of full collections, and
they are handed back to the collector when the last one ends."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from service.runs.heap import RUN_YOUNG_THRESHOLD, FrozenHeap


@pytest.fixture(autouse=True)
def nothing_frozen() -> Iterator[None]:
    """Each test starts from a process with nothing frozen (another test's app may have
    frozen its start-up), and leaves it so."""
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_the_first_run_freezes_and_the_last_unfreezes() -> None:
    heap = FrozenHeap()
    with heap.held():
        frozen = gc.get_freeze_count()
        assert frozen > 0
        # What a second freeze would take in:
        made_since: list[list[int]] = [[] for _ in range(1000)]
        with heap.held():
            # A second run freezes nothing more. Frozen objects may die meanwhile (the
            # count falls as they are freed, whoever frees them); none may join.
            assert gc.get_freeze_count() <= frozen
        assert 0 < gc.get_freeze_count() <= frozen  # one run still streams
        assert len(made_since) == 1000
    assert gc.get_freeze_count() == 0


def test_an_ending_run_unfreezes_even_when_it_fails() -> None:
    heap = FrozenHeap()
    with pytest.raises(RuntimeError), heap.held():
        raise RuntimeError("the run failed")
    assert gc.get_freeze_count() == 0


class Node:
    """An object that can sit in a reference cycle and be watched by a weak reference."""

    partner: Node | None = None


def test_a_process_frozen_before_its_runs_is_frozen_again_after_them() -> None:
    node = Node()
    node.partner = node  # a cycle, garbage once the name goes
    watch = weakref.ref(node)
    del node
    gc.freeze()  # as a serving process does once it has started: the cycle is frozen too
    heap = FrozenHeap()
    with heap.held():
        assert watch() is not None
    # The run's end hands everything back, collects (the frozen cycle too), then freezes
    # what is left again, so that serving keeps its small passes.
    assert watch() is None
    assert gc.get_freeze_count() > 0


def test_young_passes_are_spaced_while_runs_stream_and_put_back_after() -> None:
    before = gc.get_threshold()
    heap = FrozenHeap()
    with heap.held():
        young, middle, old = gc.get_threshold()
        assert young == max(before[0], RUN_YOUNG_THRESHOLD)
        assert (middle, old) == before[1:]
        with heap.held():
            assert gc.get_threshold()[0] == young
        assert gc.get_threshold()[0] == young  # one run still streams
    assert gc.get_threshold() == before
    with pytest.raises(RuntimeError), heap.held():
        raise RuntimeError("the run failed")
    assert gc.get_threshold() == before
