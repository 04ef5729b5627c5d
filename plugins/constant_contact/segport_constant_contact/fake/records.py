"""What the fake Constant Contact stores: lists, contacts, import activities, logged requests,
and the rules by which it refuses a contact."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from segport_constant_contact.fake.answers import iso, utc_now

MAX_CUSTOM_FIELDS = 25
# Good enough for a fake: something@something.tld without spaces.
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    method: str
    path: str
    arrived: float
    """``time.monotonic()`` at arrival."""
    body_bytes: int
    record_count: int | None
    status: int


@dataclass
class FakeList:
    list_id: str
    name: str
    description: str = ""
    created_at: str = field(default_factory=lambda: iso(utc_now()))
    members: set[str] = field(default_factory=set)
    """Lower-cased e-mails."""

    def as_json(self, with_count: bool) -> dict[str, Any]:
        data: dict[str, Any] = {
            "list_id": self.list_id,
            "name": self.name,
            "description": self.description,
            "favorite": False,
            "created_at": self.created_at,
            "updated_at": self.created_at,
        }
        if with_count:
            data["membership_count"] = len(self.members)
        return data


@dataclass
class FakeContact:
    contact_id: str
    email: str
    fields: dict[str, Any]
    list_ids: set[str] = field(default_factory=set)
    unsubscribed: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "contact_id": self.contact_id,
            "email_address": {
                "address": self.email,
                "permission_to_send": "unsubscribed" if self.unsubscribed else "implicit",
            },
            **{k: v for k, v in self.fields.items() if k != "email"},
            "list_memberships": sorted(self.list_ids),
        }


@dataclass
class FakeActivity:
    activity_id: str
    items: int
    person_count: int = 0
    error_count: int = 0
    correctable_count: int = 0
    cannot_add_to_list_count: int = 0
    errors: list[str] = field(default_factory=list)
    polls: int = 0
    fails: bool = False
    created_at: str = field(default_factory=lambda: iso(utc_now()))
    completed_at: str | None = None

    def state(self, polls_to_complete: int) -> str:
        if self.polls >= polls_to_complete:
            return "failed" if self.fails else "completed"
        return "processing" if self.polls > 0 else "initialized"

    def as_json(self, polls_to_complete: int) -> dict[str, Any]:
        state = self.state(polls_to_complete)
        done = state in ("completed", "failed")
        if done and self.completed_at is None:
            self.completed_at = iso(utc_now())
        return {
            "activity_id": self.activity_id,
            "state": state,
            "percent_done": 100 if done else (50 if state == "processing" else 0),
            "activity_errors": list(self.errors) if done else [],
            "status": {
                "items_total_count": self.items,
                "items_completed_count": self.items if done else 0,
                "person_count": self.person_count if done else 0,
                "error_count": self.error_count if done else 0,
                "correctable_count": self.correctable_count if done else 0,
                "cannot_add_to_list_count": self.cannot_add_to_list_count if done else 0,
            },
            "started_at": self.created_at,
            "completed_at": self.completed_at,
            "created_at": self.created_at,
            "updated_at": self.completed_at or self.created_at,
            "_links": {"self": {"href": f"/v3/activities/{self.activity_id}"}},
        }


def contact_problem(contact: Any) -> tuple[str | None, bool]:
    """What Constant Contact would refuse in one contact, and whether it counts as
    correctable (bad e-mail or date formats) rather than an error."""
    if not isinstance(contact, dict):
        return "not a contact object", False
    email = contact.get("email")
    if not email:
        return "email is required", False
    if not isinstance(email, str) or len(email) > 50 or not EMAIL_RE.match(email):
        return f"invalid email address {email!r}", True
    anniversary = contact.get("anniversary")
    if anniversary is not None and not (
        isinstance(anniversary, str) and DATE_RE.match(anniversary)
    ):
        return f"invalid anniversary date {anniversary!r}", True
    month, day = contact.get("birthday_month"), contact.get("birthday_day")
    if (month is None) != (day is None):
        return "birthday_month and birthday_day must be given together", True
    if month is not None and not (
        isinstance(month, int) and isinstance(day, int) and 1 <= month <= 12 and 1 <= day <= 31
    ):
        return f"invalid birthday {month!r}/{day!r}", True
    custom = [k for k in contact if k.startswith("cf:")]
    if len(custom) > MAX_CUSTOM_FIELDS:
        return f"{len(custom)} custom fields; at most {MAX_CUSTOM_FIELDS} allowed", False
    return None, False
