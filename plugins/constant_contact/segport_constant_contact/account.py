"""What the connected account holds that exports depend on: its lists and custom fields.

Both are paged collections (docs/constant-contact.md, "Lists" and "Custom fields"):
``GET /contact_lists`` (``limit`` at most 500, ``status`` to include deleted lists) and
``GET /contact_custom_fields`` (``limit`` at most 100), each followed through
``_links.next`` on the API base only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from segport_constant_contact import fields
from segport_constant_contact.transport import ApiTransport
from service.plugins import MappingTarget, SettingError

LISTS_PAGE_SIZE = 500
"""The largest page ``GET /contact_lists`` serves ("from 1 - 500")."""
CUSTOM_FIELDS_PAGE_SIZE = 100
"""The largest page ``GET /contact_custom_fields`` serves ("from 1 - 100")."""


@dataclass(frozen=True, slots=True)
class AccountList:
    list_id: str
    name: str
    membership_count: int | None
    deleted: bool


@dataclass(frozen=True, slots=True)
class CustomField:
    name: str
    """What follows ``cf:`` in an import (the label with blanks as underscores)."""
    label: str
    type: str

    @property
    def target(self) -> str:
        return fields.CUSTOM_FIELD_PREFIX + self.name


async def account_lists(transport: ApiTransport) -> list[AccountList]:
    """Every list of the account, deleted ones included (and marked) so that a deleted
    list can be named as such rather than as unknown."""
    items = await transport.get_pages(
        "/contact_lists",
        {"limit": LISTS_PAGE_SIZE, "include_membership_count": "all", "status": "all"},
        "lists",
    )
    return [_list(item) for item in items if item.get("list_id")]


def _list(item: dict[str, Any]) -> AccountList:
    count = item.get("membership_count")
    return AccountList(
        list_id=str(item["list_id"]),
        name=str(item.get("name", "")),
        membership_count=count if isinstance(count, int) and not isinstance(count, bool) else None,
        deleted=bool(item.get("deleted_at")),
    )


async def account_custom_fields(transport: ApiTransport) -> list[CustomField]:
    items = await transport.get_pages(
        "/contact_custom_fields", {"limit": CUSTOM_FIELDS_PAGE_SIZE}, "custom_fields"
    )
    return [
        CustomField(
            str(item["name"]), str(item.get("label") or item["name"]), str(item.get("type", ""))
        )
        for item in items
        if item.get("name")
    ]


def custom_field_targets(custom: Sequence[CustomField]) -> list[MappingTarget]:
    """The account's custom fields as mapping targets (``cf:<name>``)."""
    return [
        MappingTarget(f.target, f.label, False, fields.CUSTOM_FIELD_VALUE_MAX, f.type or "string")
        for f in custom
    ]


def check_custom_fields(
    targets: Sequence[str], custom: Sequence[CustomField]
) -> list[SettingError]:
    """An error for each ``cf:`` target the account has no custom field for."""
    known = {f.target for f in custom}
    return [
        SettingError(
            target,
            f"the connected Constant Contact account has no custom field "
            f"{target[len(fields.CUSTOM_FIELD_PREFIX) :]!r}; create it in Constant Contact "
            "or map another field",
            "UNKNOWN_CUSTOM_FIELD",
        )
        for target in dict.fromkeys(targets)
        if fields.is_custom_field(target) and target not in known
    ]
