"""What the fake Mailchimp holds: accounts, audiences, merge fields and members, and the
rules a merge field's value must follow (as the fact sheet describes them)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

MEMBER_STATUSES = ("subscribed", "unsubscribed", "cleaned", "pending", "transactional")
NEW_MEMBER_STATUSES = ("subscribed", "unsubscribed", "cleaned", "pending", "transactional")
COMPLIANCE_STATUSES = ("unsubscribed", "cleaned")
"""Members in these states cannot be re-subscribed through the API."""
ADDRESS_PARTS = ("addr1", "addr2", "city", "state", "zip", "country")
REQUIRED_ADDRESS_PARTS = ("addr1", "city", "state", "zip")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_BIRTHDAY = re.compile(r"^(\d{2})/(\d{2})$")


def subscriber_hash(email: str) -> str:
    """How Mailchimp names a member in paths: the MD5 of the lower-cased address."""
    return hashlib.md5(email.lower().encode(), usedforsecurity=False).hexdigest()


def now_text() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def is_email(value: str) -> bool:
    return len(value) <= 254 and _EMAIL.match(value) is not None


@dataclass
class FakeMergeField:
    merge_id: int
    tag: str
    name: str
    type: str = "text"
    required: bool = False
    default_value: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    def as_json(self, list_id: str) -> dict[str, Any]:
        return {
            "merge_id": self.merge_id,
            "tag": self.tag,
            "name": self.name,
            "type": self.type,
            "required": self.required,
            "default_value": self.default_value,
            "public": True,
            "display_order": self.merge_id,
            "options": dict(self.options),
            "list_id": list_id,
        }

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not valid for this field (Mailchimp's kind of words), or None."""
        if self.type == "text" and type(value) is str and 0 < len(value) <= 255:
            return None  # the common case, first
        if value == "" or value is None:
            return "Please enter a value" if self.required else None
        kind = self.type
        if kind == "number":
            if isinstance(value, bool):
                return "Please enter a number"
            if isinstance(value, int | float):
                return None
            try:
                float(str(value))
            except ValueError:
                return "Please enter a number"
            return None
        if kind == "address":
            if not isinstance(value, dict):
                return "Please enter a complete address"
            missing = [p for p in REQUIRED_ADDRESS_PARTS if not str(value.get(p) or "").strip()]
            unknown = [p for p in value if p not in ADDRESS_PARTS]
            if missing or unknown:
                return "Please enter a complete address"
            return None
        if not isinstance(value, str):
            return "Please enter a text value"
        if kind == "birthday":
            match = _BIRTHDAY.match(value)
            if match is None or not _valid_month_day(int(match[1]), int(match[2])):
                return "Please enter the date using the format MM/DD."
        elif kind == "date":
            date_format = str(self.options.get("date_format", "MM/DD/YYYY"))
            if _parse_date(value, date_format) is None:
                return f"Please enter the date using the format {date_format}."
        elif kind in ("url", "imageurl"):
            if not value.startswith(("http://", "https://")):
                return "Please enter a valid URL"
        elif kind in ("radio", "dropdown"):
            choices = self.options.get("choices") or []
            if value not in choices:
                return "Please choose one of the options"
        elif kind == "zip":
            if not re.fullmatch(r"\d{5}(-\d{4})?", value):
                return "Please enter a valid zip code"
        elif len(value) > 255:
            return "Please enter at most 255 characters"
        return None


def _valid_month_day(month: int, day: int) -> bool:
    days = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
    return 1 <= month <= 12 and 1 <= day <= days[month - 1]


def _parse_date(value: str, date_format: str) -> datetime | None:
    pattern = date_format.upper().replace("MM", "%m").replace("DD", "%d").replace("YYYY", "%Y")
    try:
        return datetime.strptime(value, pattern)
    except ValueError:
        return None


def default_merge_fields() -> list[FakeMergeField]:
    """The merge fields of a new audience."""
    return [
        FakeMergeField(1, "FNAME", "First Name"),
        FakeMergeField(2, "LNAME", "Last Name"),
        FakeMergeField(3, "ADDRESS", "Address", "address"),
        FakeMergeField(4, "PHONE", "Phone Number", "phone"),
        FakeMergeField(5, "BIRTHDAY", "Birthday", "birthday", options={"date_format": "MM/DD"}),
    ]


@dataclass
class FakeMember:
    email_address: str
    status: str
    merge_fields: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    last_changed: str = field(default_factory=now_text)
    forgotten: bool = False
    """Deleted permanently: it cannot be imported again."""
    id: str = ""
    """The subscriber hash (computed from the address unless the caller has it already)."""

    def __post_init__(self) -> None:
        if not self.id:
            self.id = subscriber_hash(self.email_address)

    def as_json(self, list_id: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "email_address": self.email_address,
            "status": self.status,
            "merge_fields": dict(self.merge_fields),
            "tags": [{"name": tag} for tag in self.tags],
            "last_changed": self.last_changed,
            "list_id": list_id,
        }


@dataclass
class FakeAudience:
    id: str
    name: str
    merge_fields: list[FakeMergeField] = field(default_factory=default_merge_fields)
    members: dict[str, FakeMember] = field(default_factory=dict)
    """By subscriber hash."""

    def field(self, tag: str) -> FakeMergeField | None:
        return next((f for f in self.merge_fields if f.tag == tag), None)

    def fields_by_tag(self) -> dict[str, FakeMergeField]:
        """The merge fields by tag (the first of a tag wins, as in :meth:`field`): a batch
        looks its members' tags up here rather than walking the list for each value."""
        found: dict[str, FakeMergeField] = {}
        for spec in self.merge_fields:
            found.setdefault(spec.tag, spec)
        return found

    def active(self) -> list[FakeMember]:
        """Members that count in the audience (not archived, not forgotten)."""
        return [m for m in self.members.values() if m.status != "archived" and not m.forgotten]

    def as_json(self) -> dict[str, Any]:
        subscribed = sum(1 for m in self.members.values() if m.status == "subscribed")
        return {
            "id": self.id,
            "name": self.name,
            "stats": {"member_count": subscribed, "total_contacts": len(self.active())},
        }


@dataclass
class FakeAccount:
    api_key: str
    dc: str
    account_id: str
    account_name: str
    email: str
    audiences: dict[str, FakeAudience] = field(default_factory=dict)
    revoked: bool = False
    """A revoked key answers 401 "API Key Invalid" from then on."""

    def as_json(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "account_name": self.account_name,
            "email": self.email,
            "login_id": self.account_id,
        }
