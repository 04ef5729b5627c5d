"""Identifiers: time-ordered, and in creation order within one process."""

from __future__ import annotations

import time

from service.domain import new_id


def test_ids_made_in_a_burst_sort_in_the_order_they_were_made() -> None:
    ids = [new_id() for _ in range(50_000)]  # many share a millisecond

    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_an_id_is_26_hex_digits_starting_with_its_millisecond() -> None:
    before = int(time.time() * 1000)
    made = new_id()
    after = int(time.time() * 1000)

    assert len(made) == 26
    int(made, 16)  # hexadecimal throughout
    assert before <= int(made[:12], 16) <= after + 1
