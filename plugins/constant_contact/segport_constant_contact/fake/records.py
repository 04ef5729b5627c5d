"""What the fake Constant Contact stores: lists, custom fields, contacts, import activities
and logged requests, each answering in the published shapes (docs/constant-contact.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from segport_constant_contact.fake.answers import iso, utc_now

ENDED_BADLY = ("failed", "cancelled", "timed_out")


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
    deleted_at: str | None = None

    def as_json(self, with_count: bool) -> dict[str, Any]:
        data: dict[str, Any] = {
            "list_id": self.list_id,
            "name": self.name,
            "description": self.description,
            "favorite": False,
            "created_at": self.created_at,
            "updated_at": self.deleted_at or self.created_at,
        }
        if self.deleted_at is not None:
            data["deleted_at"] = self.deleted_at
        if with_count:
            data["membership_count"] = len(self.members)
        return data


@dataclass(slots=True)
class FakeContact:
    contact_id: str
    email: str
    fields: dict[str, Any]
    list_ids: frozenset[str] = frozenset()
    """Shared between contacts (an import's new contacts share its lists): replaced, never
    changed in place."""
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
class FakeCustomField:
    custom_field_id: str
    name: str
    label: str
    type: str = "string"
    created_at: str = field(default_factory=lambda: iso(utc_now()))

    def as_json(self) -> dict[str, Any]:
        return {
            "custom_field_id": self.custom_field_id,
            "label": self.label,
            "name": self.name,
            "type": self.type,
            "updated_at": self.created_at,
            "created_at": self.created_at,
        }


@dataclass
class FakeActivity:
    """One import (or membership) activity. Counted as the description says:
    ``person_count`` is every contact of the request, refused ones included."""

    activity_id: str
    items: int
    person_count: int = 0
    error_count: int = 0
    correctable_count: int = 0
    cannot_add_to_list_count: int = 0
    errors: list[str] = field(default_factory=list)
    polls: int = 0
    """Times the activity was read (alone or in the collection): it moves on each."""
    ends: str = "completed"
    stalls: bool = False
    """Never ends: stays ``processing`` however often it is read."""
    created_at: str = field(default_factory=lambda: iso(utc_now()))
    completed_at: str | None = None

    def state(self, polls_to_complete: int) -> str:
        if self.polls >= polls_to_complete and not self.stalls:
            return self.ends
        return "processing" if self.polls > 0 else "initialized"

    def as_json(self, polls_to_complete: int) -> dict[str, Any]:
        state = self.state(polls_to_complete)
        done = state == "completed" or state in ENDED_BADLY
        if done and self.completed_at is None:
            self.completed_at = iso(utc_now())
        share = 1.0 if done else min(self.polls / max(polls_to_complete, 1), 1.0)
        if state in ENDED_BADLY:
            share = 0.5  # it stopped halfway
        completed = round(self.items * share)
        errors = list(self.errors) if done else []
        if state in ENDED_BADLY:
            errors.append(f"The import {state.replace('_', ' ')} before it completed")
        return {
            "activity_id": self.activity_id,
            "state": state,
            "percent_done": round(100 * share),
            "activity_errors": errors,
            "status": {
                "items_total_count": self.items,
                "items_completed_count": completed,
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
