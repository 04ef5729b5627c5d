"""The SQLite column codec: documents (see :mod:`service.store._records`) to rows and back.

Nested values are JSON text (orjson), datetimes ISO-8601 UTC text with
microseconds (fixed width, so text order is time order), booleans 0/1.
Which column holds which is decided by its name, the same in every table.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from service.store._records import as_utc

JSON_COLUMNS = frozenset(
    {"settings", "field_mapping", "segment_ids", "schedule", "counts", "errors", "checkpoint"}
)
DATETIME_COLUMNS = frozenset(
    {
        "created_at",
        "updated_at",
        "data_privacy_accepted_at",
        "queued_at",
        "started_at",
        "finished_at",
        "expires_at",
    }
)
BOOL_COLUMNS = frozenset({"cancel_requested"})


def iso(value: datetime) -> str:
    """A datetime as stored: UTC ISO-8601 text with microseconds."""
    return as_utc(value).isoformat(timespec="microseconds")


def json_text(value: Any) -> str:
    """A nested value as stored: JSON text."""
    return orjson.dumps(value).decode()


def encode_value(column: str, value: Any) -> Any:
    if value is None:
        return None
    if column in JSON_COLUMNS:
        return json_text(value)
    if column in DATETIME_COLUMNS:
        return iso(value)
    if column in BOOL_COLUMNS:
        return int(bool(value))
    return value


def encode(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A document as a row: column name to stored value."""
    return {column: encode_value(column, value) for column, value in doc.items()}


def decode(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row (column name to stored value) as a document."""
    doc: dict[str, Any] = {}
    for column, value in row.items():
        if value is not None:
            if column in JSON_COLUMNS:
                value = orjson.loads(value)
            elif column in DATETIME_COLUMNS:
                value = datetime.fromisoformat(value)
            elif column in BOOL_COLUMNS:
                value = bool(value)
        doc[column] = value
    return doc
