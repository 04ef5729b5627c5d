"""The whole-list mirror: a ``MIRROR`` run that also takes off the export's list every
member outside its segments, those it did not put there included.

It is never an export's setting (one mistaken edit would empty a shared list): a run is a
whole-list run only when ``runExport`` passes the ``wholeListConfirmation`` of a
``previewExport(input: {exportId, mirrorScope: WHOLE_LIST})`` of the same export, made
within :data:`CONFIRMATION_SECONDS`. The preview counts those members in ``toRemove``;
its confirmation carries that number, sealed with the service's ledger key, and the run
removes them only while the list holds no more of them than the preview showed:
otherwise it removes none of them and says why (its own leavers go as in any mirror).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterable, Iterator

import orjson

from service.access.ledger_seal import LedgerSeal
from service.runs.mapping import SeenKeys

CONFIRMATION_SECONDS = 3600
"""How long a preview's confirmation lets a run remove the members outside the export."""
PURPOSE = "whole-list-mirror"


class ConfirmationError(ValueError):
    """A ``wholeListConfirmation`` that does not allow this run (the message says why)."""


def _mac(seal: LedgerSeal, export_id: str, cap: int, expires: int) -> int:
    return seal.key_id(f"{PURPOSE}\x00{export_id}\x00{cap}\x00{expires}")


def confirmation(seal: LedgerSeal, export_id: str, cap: int, *, now: float | None = None) -> str:
    """The confirmation a whole-list preview of ``export_id`` answers with."""
    expires = int(now if now is not None else time.time()) + CONFIRMATION_SECONDS
    raw = orjson.dumps([cap, expires, _mac(seal, export_id, cap, expires)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def confirmed_cap(seal: LedgerSeal, export_id: str, token: str, *, now: float | None = None) -> int:
    """How many members outside the export ``token`` lets a run of ``export_id`` remove.
    Raises :class:`ConfirmationError` for a token not made for it, or expired."""
    try:
        raw = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        cap, expires, mac = (int(part) for part in raw)
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise ConfirmationError(
            "this is not a confirmation previewExport gave (mirrorScope: WHOLE_LIST)"
        ) from None
    if mac != _mac(seal, export_id, cap, expires):
        raise ConfirmationError("this confirmation was given by a preview of another export")
    if (now if now is not None else time.time()) > expires:
        raise ConfirmationError(
            "this confirmation has expired: preview the export again (mirrorScope: WHOLE_LIST)"
        )
    return cap


def outsiders(
    members: Iterable[str], seen: SeenKeys, asked: Callable[[int], bool], seal: LedgerSeal
) -> Iterator[str]:
    """The list's members no record of this run took, but those the ordinary removal
    asked for already (``asked`` of their key id)."""
    key_id = seal.key_id
    for key in members:
        if key not in seen and not asked(key_id(key)):
            yield key
