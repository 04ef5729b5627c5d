"""How one finished import activity's figures become outcomes that add up to the contacts sent.

The published description (docs/constant-contact.md, "Import accounting") says
``person_count`` is "the total number of contacts in an import contacts request";
``error_count`` and ``correctable_count`` are the contacts refused, and
``cannot_add_to_list_count`` those updated but, being unsubscribed, not added to the
list. Read that way, for ``sent`` contacts::

    rejected           = error_count + correctable_count
    cannot_add_to_list = cannot_add_to_list_count
    accepted           = person_count - rejected - cannot_add_to_list

Figures that fit that reading are taken as they are. Otherwise the one other reading
seen in practice (``person_count`` counts only the contacts processed, refused ones
apart) is tried; and whatever the figures, the outcomes are bounded so that they never
exceed the contacts sent, and any shortfall is counted as rejected. Every time the
figures needed anything but the documented reading, a sample says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ImportAccount:
    accepted: int
    rejected: int
    cannot_add_to_list: int
    notes: list[str] = field(default_factory=list)
    """Why the figures were not read as documented (one sample each)."""

    @property
    def total(self) -> int:
        return self.accepted + self.rejected + self.cannot_add_to_list


def count(status: Mapping[str, Any], name: str) -> int:
    """A non-negative count of an activity's ``status``; 0 when absent or not a number."""
    value = status.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, int):
        return 0
    return max(0, value)


def account_import(status: Mapping[str, Any], sent: int | None, activity: str) -> ImportAccount:
    """Outcomes of one finished import activity of ``sent`` contacts (None when this
    process did not send it: then ``items_total_count``, else ``person_count``, is the
    best figure of what was sent)."""
    people = count(status, "person_count")
    refused = count(status, "error_count") + count(status, "correctable_count")
    cannot = count(status, "cannot_add_to_list_count")
    notes: list[str] = []
    if sent is None:
        sent = count(status, "items_total_count") or people
    if people == sent:
        accepted = people - refused - cannot
    elif people + refused == sent and people >= cannot:
        # person_count left the refused contacts out: the undocumented reading, taken
        # only because it is the one that makes the figures add up.
        accepted = people - cannot
        notes.append(
            f"Constant Contact import {activity}: person_count {people} read as the contacts "
            f"processed, not as all {sent} sent (it plus {refused} refused adds up to them)"
        )
    else:
        accepted = people - refused - cannot
        notes.append(
            f"Constant Contact import {activity} reported person_count {people} for {sent} "
            "contacts sent; its figures were bounded to the contacts sent"
        )
    # Bound every figure by what was sent, refused contacts first (they are certain).
    rejected = min(refused, sent)
    cannot = min(cannot, sent - rejected)
    accepted = min(max(accepted, 0), sent - rejected - cannot)
    missing = sent - rejected - cannot - accepted
    if missing:
        rejected += missing
        notes.append(
            f"{missing} of {sent} contacts sent are not accounted for by Constant Contact "
            f"import {activity}; counted as rejected"
        )
    return ImportAccount(accepted, rejected, cannot, notes)
