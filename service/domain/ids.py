"""Global ids: the opaque ``base64url("Type:id")`` form in which records are named outside.

The GraphQL API hands these out (Relay's global object identification), and
everything else that names a record to people or other programs (the OAuth
callback's redirect, the failure webhook, the demo's banner) uses the same
form, so an id seen anywhere can be given to ``node(id:)``. They live here, at
the bottom, because layers that must not import the API need them too.
"""

from __future__ import annotations

import base64
import binascii


class InvalidGlobalId(ValueError):
    """Not a global id this service made (or not one of the expected type)."""


def to_global_id(type_name: str, raw_id: str) -> str:
    """The global id of the record ``raw_id`` of GraphQL type ``type_name``."""
    return base64.urlsafe_b64encode(f"{type_name}:{raw_id}".encode()).decode().rstrip("=")


def from_global_id(global_id: str) -> tuple[str, str]:
    """``(type name, raw id)`` of a global id; :class:`InvalidGlobalId` when malformed."""
    try:
        padded = global_id + "=" * (-len(global_id) % 4)
        decoded = base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise InvalidGlobalId(f"{global_id!r} is not a valid id") from exc
    type_name, sep, raw_id = decoded.partition(":")
    if not sep or not type_name or not raw_id:
        raise InvalidGlobalId(f"{global_id!r} is not a valid id")
    return type_name, raw_id


__all__ = ["InvalidGlobalId", "from_global_id", "to_global_id"]
