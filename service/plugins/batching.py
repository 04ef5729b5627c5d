"""Packing encoded contacts into upload requests within a destination's declared limits.

A request body is the destination's envelope plus the records joined by one
separator byte, and must stay strictly under ``batch_max_bytes`` (Constant
Contact silently drops what is past its 4 MB, so "about right" is not enough).
"""

from __future__ import annotations

from service.plugins.api import DestinationLimits, EncodedRecord, UploadBatch

SEPARATOR_BYTES = 1
"""Bytes between two records in a request body (a comma in a JSON array)."""


class RecordTooLarge(Exception):
    """One record alone does not fit in a request; it is rejected, never sent."""

    def __init__(self, profile_id: str, size: int, limit: int) -> None:
        super().__init__(
            f"profile {profile_id!r} encodes to {size} bytes, which with the request envelope "
            f"does not fit under the destination's limit of {limit} bytes per request"
        )
        self.profile_id = profile_id
        self.size = size
        self.limit = limit


class ContactBatcher:
    """Accumulates records and hands back full batches.

    ``add`` returns the batch that had to be closed to make room for the new
    record (or None); ``flush`` returns what is left at the end.
    """

    def __init__(self, limits: DestinationLimits, envelope_size: int) -> None:
        if limits.batch_max_records < 1:
            raise ValueError(
                f"batch_max_records must be at least 1, not {limits.batch_max_records}"
            )
        if envelope_size < 0:
            raise ValueError(f"envelope size must not be negative, not {envelope_size}")
        self.max_records = limits.batch_max_records
        self.max_bytes = limits.batch_max_bytes
        self.envelope_size = envelope_size
        self.rejected = 0
        """Records refused because they could never fit in a request."""
        self._records: list[EncodedRecord] = []
        self._size = envelope_size

    def add(self, record: EncodedRecord) -> UploadBatch | None:
        """Add ``record``; return the batch closed to make room for it, if any.

        Raises :class:`RecordTooLarge` (and counts it) when the record cannot fit
        in any request.
        """
        size = len(record.encoded)
        if self.envelope_size + size >= self.max_bytes:
            self.rejected += 1
            raise RecordTooLarge(record.profile_id, size, self.max_bytes)
        closed: UploadBatch | None = None
        if self._records and (
            len(self._records) >= self.max_records
            or self._size + SEPARATOR_BYTES + size >= self.max_bytes
        ):
            closed = self.flush()
        if self._records:
            self._size += SEPARATOR_BYTES
        self._records.append(record)
        self._size += size
        return closed

    def flush(self) -> UploadBatch | None:
        """The pending records as a batch (None when there are none)."""
        if not self._records:
            return None
        batch = UploadBatch(records=self._records, size_bytes=self._size)
        self._records = []
        self._size = self.envelope_size
        return batch

    @property
    def pending(self) -> int:
        return len(self._records)
