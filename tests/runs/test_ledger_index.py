"""The run's in-memory ledger index answers as a dict of the ledger would."""

from __future__ import annotations

import pickle
from collections.abc import AsyncIterator
from typing import cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.runs.ledger_index import LedgerIndex
from service.store.base import LedgerDigest, LedgerOutcome, Store

KEY_IDS = st.integers(min_value=-(2**63), max_value=2**63 - 1)


class Digests:
    """The one store call the index makes, over ``entries`` (key id -> (fp, outcome))."""

    def __init__(self, entries: dict[int, tuple[int, LedgerOutcome]], page: int) -> None:
        self.entries = entries
        self.page = page

    async def iter_ledger_digest(
        self, export_id: str, *, batch_size: int = 10_000
    ) -> AsyncIterator[LedgerDigest]:
        ordered = sorted(self.entries)
        step = min(self.page, batch_size)
        for start in range(0, len(ordered), step):
            ids = ordered[start : start + step]
            yield LedgerDigest(
                ids,
                [self.entries[k][0] for k in ids],
                [self.entries[k][1].value for k in ids],
            )


async def loaded(entries: dict[int, tuple[int, LedgerOutcome]], page: int = 3) -> LedgerIndex:
    return await LedgerIndex.load(cast(Store, Digests(entries, page)), "export")


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.one_of(
            KEY_IDS,
            # Alike in their low bits, so they want the same slot.
            st.integers(min_value=-64, max_value=64).map(lambda n: n << 40),
            st.just(0),
        ),
        st.tuples(
            st.integers(min_value=-(2**63), max_value=2**63 - 1), st.sampled_from(LedgerOutcome)
        ),
        max_size=300,
    ),
    st.lists(KEY_IDS, max_size=50),
)
async def test_every_entry_is_found_and_nothing_else(
    entries: dict[int, tuple[int, LedgerOutcome]], others: list[int]
) -> None:
    index = await loaded(entries)
    assert len(index) == len(entries)
    for key_id, entry in entries.items():
        assert index.get(key_id) == entry
    for key_id in others:
        assert index.get(key_id) == entries.get(key_id)


async def test_an_empty_ledger_knows_no_key() -> None:
    index = await loaded({})
    assert len(index) == 0
    assert index.get(0) is None
    assert index.get(-1) is None


async def test_a_large_ledger_from_many_pages() -> None:
    entries = {k * 7919 - 2**40: (k, LedgerOutcome.SENT) for k in range(50_000)}
    index = await loaded(entries, page=10_000)
    assert index.get(-(2**40)) == (0, LedgerOutcome.SENT)
    assert index.get(49_999 * 7919 - 2**40) == (49_999, LedgerOutcome.SENT)
    assert index.get(1) is None


def travelled(index: LedgerIndex, how: str) -> LedgerIndex:
    if how == "out of band":  # as service.runs.helper sends a call
        buffers: list[pickle.PickleBuffer] = []
        data = pickle.dumps(index, protocol=5, buffer_callback=buffers.append)
        # The three columns travel beside the pickle, which holds none of their bytes.
        assert [b.raw().nbytes for b in buffers] == [8 * len(index), 8 * len(index), len(index)]
        assert len(data) < 200
        received = [bytearray(b.raw()) for b in buffers]
        for buffer in buffers:
            buffer.release()
        return cast(LedgerIndex, pickle.loads(data, buffers=received))  # noqa: S301
    protocol = int(how.removeprefix("protocol "))
    return cast(LedgerIndex, pickle.loads(pickle.dumps(index, protocol=protocol)))  # noqa: S301


@pytest.mark.parametrize("how", ["out of band", "protocol 5", "protocol 4", "protocol 2"])
async def test_an_index_that_travels_to_a_helper_answers_alike_there(how: str) -> None:
    outcomes = list(LedgerOutcome)
    entries = {k << 20: (k * 31, outcomes[k % len(outcomes)]) for k in range(-300, 300)}
    index = await loaded(entries, page=50)

    copy = travelled(index, how)

    assert len(copy) == len(index) == 600
    for key_id in [*entries, 1, -1, 5 << 20 | 1, 400 << 20]:
        assert copy.get(key_id) == index.get(key_id)
    assert travelled(copy, how).get(5 << 20) == index.get(5 << 20)  # and travels on
