"""Opaque Relay global ids (``base64url("Type:id")``) and page cursors.

The encoding itself is :mod:`service.domain.ids` (layers below the API name records
the same way); its names are re-exported here for the API's modules.
"""

from __future__ import annotations

import base64
import binascii

from service.api.errors import UserInputError
from service.domain.ids import InvalidGlobalId, from_global_id, to_global_id


def expect_global_id(global_id: str, type_name: str, field: str) -> str:
    """The raw id inside ``global_id``, which must name a ``type_name``.

    Raises a :class:`UserInputError` for ``field`` otherwise, so mutations
    report it as a userError naming the value.
    """
    try:
        found, raw_id = from_global_id(global_id)
    except InvalidGlobalId as exc:
        raise UserInputError(field, str(exc), "INVALID_ID") from exc
    if found != type_name:
        raise UserInputError(field, f"{global_id!r} is not a {type_name} id", "INVALID_ID")
    return raw_id


_CURSOR_PREFIX = "cursor:"


def to_cursor(raw_id: str) -> str:
    return base64.urlsafe_b64encode((_CURSOR_PREFIX + raw_id).encode()).decode().rstrip("=")


def from_cursor(cursor: str) -> str:
    """The raw id a cursor points after; :class:`InvalidGlobalId` when it is not one of ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        decoded = base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise InvalidGlobalId(f"{cursor!r} is not a valid cursor") from exc
    if not decoded.startswith(_CURSOR_PREFIX) or len(decoded) == len(_CURSOR_PREFIX):
        raise InvalidGlobalId(f"{cursor!r} is not a valid cursor")
    return decoded.removeprefix(_CURSOR_PREFIX)


__all__ = [
    "InvalidGlobalId",
    "expect_global_id",
    "from_cursor",
    "from_global_id",
    "to_cursor",
    "to_global_id",
]
