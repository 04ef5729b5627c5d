"""The fake's V3 API behind the gate: the account, contact lists, custom fields, JSON
contact imports, list memberships, activities and contact look-ups.

Imports behave as the published description says (docs/constant-contact.md): bodies
past ``max_body_bytes`` are silently cut (recorded, so tests can assert it never
happens), a contact that breaks the import schema makes the request a 400
(:mod:`.contact_rules`), contacts are matched by e-mail and partially updated,
unsubscribed ones are never added to a list, ``person_count`` counts every contact of
the request, and activities move on each time they are read (alone or in the
``GET /activities`` collection, newest first).
"""

from __future__ import annotations

import itertools
import os
import threading
import uuid
from typing import Any

import orjson

from segport_constant_contact.fake.answers import FakeAnswer, api_errors, iso, utc_now, with_query
from segport_constant_contact.fake.config import FakeConfig
from segport_constant_contact.fake.contact_exports import export_contacts, export_file
from segport_constant_contact.fake.contact_rules import contact_problem, schema_problem
from segport_constant_contact.fake.records import (
    ENDED_BADLY,
    FakeActivity,
    FakeContact,
    FakeCustomField,
    FakeList,
)

GENERAL_INTEREST_LIST_ID = "07936f78-662a-11eb-af0a-fa163e56c9b0"
"""The fake's "General Interest" list, always there with this id."""
NEWSLETTER_LIST_ID = "8a2b3c4d-0000-4000-8000-00000000a001"
"""The fake's "Newsletter" list, always there with this id."""
MAX_LIST_IDS = 50
LISTS_MAX_LIMIT = 500
CUSTOM_FIELDS_MAX_LIMIT = 100
ACTIVITIES_MAX_LIMIT = 500
ACTIVITY_STATES = ("processing", "completed", "cancelled", "failed", "timed_out")
LIST_STATUSES = ("all", "active", "deleted")
SEEDED_CUSTOM_FIELDS = ("shoe_size", "loyalty_tier")
"""Custom fields the fake account has from the start."""
MAX_MEMBERSHIP_CONTACTS = 500
KEPT_ACTIVITY_ERRORS = 1000
QUEUED_ACTIVITIES = {
    "error_key": "too_many_requests",
    "error_message": "You exceeded 1,000 queued activities for this user account",
}
ACCOUNT = {
    "organization_name": "Fake Outfitters",
    "contact_email": "owner@fake-outfitters.example",
    "encoded_account_id": "fake0account",
    "first_name": "Fay",
    "last_name": "Kerr",
}


class FakeContactsApi:
    """One Constant Contact user account: its lists, contacts and activities."""

    def __init__(self, config: FakeConfig, lock: threading.RLock) -> None:
        self.config = config
        self.lock = lock
        self.account = dict(ACCOUNT)
        self.lists: dict[str, FakeList] = {}
        self.contacts: dict[str, FakeContact] = {}
        self.activities: dict[str, FakeActivity] = {}
        self.custom_fields: dict[str, FakeCustomField] = {}
        self.truncated_imports = 0
        """Imports whose body passed ``max_body_bytes`` (their excess contacts were lost)."""
        self.dropped_contacts = 0
        self.add_list("General Interest", GENERAL_INTEREST_LIST_ID)
        self.add_list("Newsletter", NEWSLETTER_LIST_ID)
        for name in SEEDED_CUSTOM_FIELDS:
            self.add_custom_field(name.replace("_", " ").capitalize())

    def add_list(self, name: str, list_id: str | None = None, description: str = "") -> str:
        with self.lock:
            list_id = list_id or str(uuid.uuid4())
            self.lists[list_id] = FakeList(list_id, name, description)
            return list_id

    def delete_list(self, list_id: str) -> None:
        """Delete a list as Constant Contact does: it stays readable with ``deleted_at``."""
        with self.lock:
            self.lists[list_id].deleted_at = iso(utc_now())

    def add_custom_field(self, label: str, field_type: str = "string") -> str:
        """A custom field; its ``name`` (what ``cf:`` names) is the label with underscores."""
        with self.lock:
            name = label.strip().replace(" ", "_")
            self.custom_fields[name] = FakeCustomField(str(uuid.uuid4()), name, label, field_type)
            return name

    def list_members(self, list_id: str) -> set[str]:
        with self.lock:
            return set(self.lists[list_id].members)

    def handle_account_summary(self, scopes: set[str]) -> FakeAnswer:
        if "account_read" not in scopes:
            return api_errors(403, "unauthorized", "The account_read scope is required")
        return FakeAnswer(200, dict(self.account))

    def _page(self, params: dict[str, str], maximum: int) -> tuple[int, int] | FakeAnswer:
        try:
            limit = int(params.get("limit", "50"))
            offset = int(params.get("cursor", "0"))
        except ValueError:
            return api_errors(400, "contacts.api.bad.request", "limit and cursor must be numbers")
        if not 1 <= limit <= maximum:
            return api_errors(
                400, "contacts.api.bad.request", f"limit {limit} is not from 1 to {maximum}"
            )
        return limit, offset

    def _next(self, path: str, query: dict[str, str]) -> dict[str, Any]:
        href = with_query(path, query)
        if self.config.foreign_next_link:
            href = f"{self.config.foreign_next_link.rstrip('/')}{href}"
        return {"href": href}

    def handle_contact_lists(self, params: dict[str, str]) -> FakeAnswer:
        paging = self._page(params, LISTS_MAX_LIMIT)
        if isinstance(paging, FakeAnswer):
            return paging
        limit, offset = paging
        statuses = set(params.get("status", "active").split(","))
        if not statuses <= set(LIST_STATUSES):
            return api_errors(400, "contacts.api.bad.request", f"status {params['status']!r}")
        with_count = params.get("include_membership_count") in ("all", "active")
        with self.lock:
            every = list(self.lists.values())
            if "all" not in statuses:
                every = [
                    fl for fl in every if ("deleted" if fl.deleted_at else "active") in statuses
                ]
            name = params.get("name")
            if name:
                every = [fl for fl in every if fl.name == name]
            page = [fl.as_json(with_count) for fl in every[offset : offset + limit]]
        body: dict[str, Any] = {"lists": page, "lists_count": len(every), "_links": {}}
        if offset + limit < len(every):
            query = {k: v for k, v in params.items() if k != "cursor"}
            query.update(limit=str(limit), cursor=str(offset + limit))
            body["_links"]["next"] = self._next("/v3/contact_lists", query)
        return FakeAnswer(200, body)

    def handle_custom_fields(self, params: dict[str, str]) -> FakeAnswer:
        paging = self._page(params, CUSTOM_FIELDS_MAX_LIMIT)
        if isinstance(paging, FakeAnswer):
            return paging
        limit, offset = paging
        with self.lock:
            every = list(self.custom_fields.values())
            page = [cf.as_json() for cf in every[offset : offset + limit]]
        body: dict[str, Any] = {"custom_fields": page, "_links": {}}
        if offset + limit < len(every):
            query = {"limit": str(limit), "cursor": str(offset + limit)}
            body["_links"]["next"] = self._next("/v3/contact_custom_fields", query)
        return FakeAnswer(200, body)

    def handle_activities(self, params: dict[str, str]) -> FakeAnswer:
        paging = self._page(params, ACTIVITIES_MAX_LIMIT)
        if isinstance(paging, FakeAnswer):
            return paging
        limit, offset = paging
        state = params.get("state")
        if state is not None and state not in ACTIVITY_STATES:
            return api_errors(400, "contacts.api.bad.request", f"state {state!r} is not valid")
        polls = self.config.polls_to_complete
        with self.lock:
            newest_first = list(reversed(self.activities.values()))
            if state is not None:
                newest_first = [a for a in newest_first if a.state(polls) == state]
            chosen = newest_first[offset : offset + limit]
            for activity in chosen:
                activity.polls += 1
            page = [a.as_json(polls) for a in chosen]
        body: dict[str, Any] = {"activities": page, "_links": {}}
        if offset + limit < len(newest_first):
            query = {"limit": str(limit), "cursor": str(offset + limit)}
            if state is not None:
                query["state"] = state
            body["_links"]["next"] = self._next("/v3/activities", query)
        return FakeAnswer(200, body)

    def _check_list_ids(self, list_ids: Any) -> FakeAnswer | None:
        if not isinstance(list_ids, list) or not list_ids:
            return api_errors(400, "contacts.api.validation.error", "list_ids is required")
        if len(list_ids) > MAX_LIST_IDS:
            return api_errors(
                400,
                "contacts.api.validation.error",
                f"list_ids holds {len(list_ids)} lists; at most {MAX_LIST_IDS} are allowed",
            )
        for list_id in list_ids:
            if not isinstance(list_id, str) or list_id not in self.lists:
                return api_errors(
                    400, "contacts.api.validation.error", f"list_ids: {list_id!r} is not a list"
                )
            if self.lists[list_id].deleted_at is not None:
                return api_errors(
                    400, "contacts.api.validation.error", f"list_ids: {list_id!r} is deleted"
                )
        return None

    def handle_json_import(self, content_type: str | None, raw: bytes) -> tuple[FakeAnswer, int]:
        """The answer and how many contacts it carried (for the request log)."""
        if not (content_type or "").startswith("application/json"):
            return api_errors(
                415, "contacts.api.unsupported.media.type", "Content-Type must be application/json"
            ), 0
        truncated = len(raw) > self.config.max_body_bytes
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return api_errors(400, "contacts.api.bad.request", f"malformed JSON: {exc}"), 0
        if not isinstance(body, dict) or not isinstance(body.get("import_data"), list):
            return api_errors(400, "contacts.api.validation.error", "import_data is required"), 0
        contacts: list[Any] = body["import_data"]
        sent = len(contacts)
        with self.lock:
            if truncated:
                contacts = self._keep_first_bytes(contacts)
                self.truncated_imports += 1
                self.dropped_contacts += sent - len(contacts)
            problem = self._check_list_ids(body.get("list_ids"))
            if problem:
                return problem, sent
            if len(contacts) > self.config.max_contacts:
                return api_errors(
                    400,
                    "contacts.api.validation.error",
                    f"import_data holds {len(contacts)} contacts; "
                    f"at most {self.config.max_contacts} are allowed",
                ), sent
            if not contacts:
                return api_errors(400, "contacts.api.validation.error", "import_data is empty"), 0
            for row, contact in enumerate(contacts, start=1):
                problem_text = schema_problem(contact, self.custom_fields.keys())
                if problem_text is not None:
                    return api_errors(
                        400,
                        "contacts.api.validation.error",
                        f"import_data row {row}: {problem_text}",
                    ), sent
            if self.config.queued_activities_429s > 0:
                self.config.queued_activities_429s -= 1
                return FakeAnswer(429, dict(QUEUED_ACTIVITIES)), sent
            activity = self._import(contacts, body["list_ids"])
            return FakeAnswer(201, activity.as_json(self.config.polls_to_complete)), sent

    def _keep_first_bytes(self, contacts: list[Any]) -> list[Any]:
        position = len(b'{"import_data":[')
        for index, contact in enumerate(contacts):
            position += len(orjson.dumps(contact)) + 1
            if position > self.config.max_body_bytes:
                return contacts[:index]
        return contacts

    def _import(self, contacts: list[Any], list_ids: list[str]) -> FakeActivity:
        activity = FakeActivity(
            str(uuid.uuid4()), items=len(contacts), stalls=self.config.imports_stall
        )
        if self.config.ending_states:
            activity.ends = self.config.ending_states.pop(0)
        elif self.config.failing_activities > 0:
            self.config.failing_activities -= 1
            activity.ends = "failed"
        self.activities[activity.activity_id] = activity
        if activity.ends in ENDED_BADLY:
            return activity  # it ends before it changed anything
        unsubscribed = self.config.unsubscribed
        joined = frozenset(list_ids)
        members = [self.lists[list_id].members for list_id in joined]
        for row, contact in enumerate(contacts, start=1):
            # Every contact of the request counts in person_count, refused ones too.
            activity.person_count += 1
            problem, correctable = contact_problem(contact)
            if problem is not None:
                if correctable:
                    activity.correctable_count += 1
                else:
                    activity.error_count += 1
                if len(activity.errors) < KEPT_ACTIVITY_ERRORS:
                    activity.errors.append(f"Row {row}: {problem}")
                continue
            email = str(contact.pop("email", None) or contact["sms_number"])
            key = email.lower()
            stored = self.contacts.get(key)
            if stored is None:
                # The request's own parsed object becomes the contact's fields.
                stored = FakeContact(_contact_id(), email, contact)
                self.contacts[key] = stored
            else:
                # Partial update: only the fields sent change.
                stored.fields.update(contact)
            if key in unsubscribed or stored.unsubscribed:
                stored.unsubscribed = True
                activity.cannot_add_to_list_count += 1
                continue
            if not joined <= stored.list_ids:
                stored.list_ids = joined if not stored.list_ids else stored.list_ids | joined
            for listed in members:
                listed.add(key)
        return activity

    def handle_memberships(self, raw: bytes, add: bool) -> FakeAnswer:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return api_errors(400, "contacts.api.bad.request", f"malformed JSON: {exc}")
        source = body.get("source") if isinstance(body, dict) else None
        ids = source.get("contact_ids") if isinstance(source, dict) else None
        if not isinstance(ids, list) or not 1 <= len(ids) <= MAX_MEMBERSHIP_CONTACTS:
            return api_errors(
                400,
                "contacts.api.validation.error",
                f"source.contact_ids must hold 1 to {MAX_MEMBERSHIP_CONTACTS} contact ids",
            )
        with self.lock:
            problem = self._check_list_ids(body.get("list_ids"))
            if problem:
                return problem
            if self.config.queued_activities_429s > 0:
                self.config.queued_activities_429s -= 1
                return FakeAnswer(429, dict(QUEUED_ACTIVITIES))
            by_id = {c.contact_id: (key, c) for key, c in self.contacts.items()}
            activity = FakeActivity(str(uuid.uuid4()), items=len(ids))
            if self.config.ending_states:
                activity.ends = self.config.ending_states.pop(0)
            self.activities[activity.activity_id] = activity
            if activity.ends in ENDED_BADLY:
                # It ends before it changed anything.
                return FakeAnswer(201, activity.as_json(self.config.polls_to_complete))
            for contact_id in ids:
                found = by_id.get(contact_id)
                if found is None:
                    activity.error_count += 1
                    activity.errors.append(f"contact {contact_id!r} does not exist")
                    continue
                key, contact = found
                activity.person_count += 1
                for list_id in body["list_ids"]:
                    if add and contact.unsubscribed:
                        activity.cannot_add_to_list_count += 1
                        break
                    if add:
                        contact.list_ids |= {list_id}
                        self.lists[list_id].members.add(key)
                    else:
                        contact.list_ids -= {list_id}
                        self.lists[list_id].members.discard(key)
            return FakeAnswer(201, activity.as_json(self.config.polls_to_complete))

    def handle_activity(self, activity_id: str) -> FakeAnswer:
        with self.lock:
            activity = self.activities.get(activity_id)
            if activity is None:
                return api_errors(
                    404, "contacts.api.not_found", f"activity {activity_id!r} was not found"
                )
            activity.polls += 1
            return FakeAnswer(200, activity.as_json(self.config.polls_to_complete))

    def handle_contact_export(self, raw: bytes) -> FakeAnswer:
        with self.lock:
            made = export_contacts(raw, self.contacts, set(self.lists))
            if isinstance(made, FakeAnswer):
                return made
            if self.config.queued_activities_429s > 0:
                self.config.queued_activities_429s -= 1
                return FakeAnswer(429, dict(QUEUED_ACTIVITIES))
            if self.config.ending_states:
                made.ends = self.config.ending_states.pop(0)
            self.activities[made.activity_id] = made
            return FakeAnswer(201, made.as_json(self.config.polls_to_complete))

    def handle_export_file(self, file_export_id: str) -> FakeAnswer:
        with self.lock:
            found = self.activities.get(file_export_id)
            return export_file(found, self.config.polls_to_complete)

    def handle_contacts(self, params: dict[str, str]) -> FakeAnswer:
        email = params.get("email")
        with self.lock:
            if email:
                found = self.contacts.get(email.lower())
                chosen = [found] if found else []
            else:
                chosen = list(self.contacts.values())[: int(params.get("limit", "50"))]
            return FakeAnswer(
                200,
                {"contacts": [c.as_json() for c in chosen], "contacts_count": len(chosen)},
            )


def _contact_id() -> str:
    """A new contact's id: UUID-shaped (version 4), unique within this fake, made from a
    random prefix and a counter (an import of 40,000 new contacts makes 40,000 of them)."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):012x}"


def _random_id_prefix() -> str:
    """The first 20 hex digits of a random version-4 UUID, dashes included."""
    h = os.urandom(10).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-"


_ID_PREFIX = _random_id_prefix()
_ID_COUNTER = itertools.count(1)
