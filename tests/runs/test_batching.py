"""ContactBatcher: requests within the record count and strictly under the byte limit."""

from __future__ import annotations

import pytest

from service.plugins import DestinationLimits, EncodedRecord
from service.plugins.batching import ContactBatcher, RecordTooLarge


def record(n: int, size: int) -> EncodedRecord:
    return EncodedRecord(profile_id=f"p{n}", encoded=b"x" * size)


def test_a_batch_closes_at_the_record_limit() -> None:
    batcher = ContactBatcher(DestinationLimits(batch_max_records=3, batch_max_bytes=10_000), 2)

    closed = [batcher.add(record(i, 10)) for i in range(4)]

    full = closed[3]
    assert closed[:3] == [None, None, None]
    assert full is not None
    assert [r.profile_id for r in full.records] == ["p0", "p1", "p2"]
    assert full.size_bytes == 2 + 3 * 10 + 2


def test_a_batch_stays_strictly_under_the_byte_limit() -> None:
    # envelope 10 + 4 records of 20 + 3 separators = 93 < 94; a fifth would make 114.
    batcher = ContactBatcher(DestinationLimits(batch_max_records=100, batch_max_bytes=94), 10)

    closed = [batcher.add(record(i, 20)) for i in range(5)]

    batch = closed[4]
    assert batch is not None
    assert batch.size_bytes == 93
    rest = batcher.flush()
    assert rest is not None
    assert [r.profile_id for r in rest.records] == ["p4"]


def test_exactly_at_the_byte_limit_is_too_much() -> None:
    batcher = ContactBatcher(DestinationLimits(batch_max_records=100, batch_max_bytes=41), 10)

    batcher.add(record(0, 15))
    closed = batcher.add(record(1, 15))  # 10 + 15 + 1 + 15 = 41: not strictly under

    assert closed is not None
    assert len(closed.records) == 1


def test_a_record_too_large_alone_is_rejected_and_counted_never_batched() -> None:
    batcher = ContactBatcher(DestinationLimits(batch_max_records=100, batch_max_bytes=50), 10)
    batcher.add(record(0, 5))

    with pytest.raises(RecordTooLarge) as raised:
        batcher.add(record(1, 40))

    assert batcher.rejected == 1
    assert "p1" in str(raised.value)
    assert "50" in str(raised.value)
    rest = batcher.flush()
    assert rest is not None
    assert [r.profile_id for r in rest.records] == ["p0"]
