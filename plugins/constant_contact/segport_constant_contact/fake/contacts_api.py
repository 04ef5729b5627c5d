"""The fake's V3 API behind the gate: the account, contact lists, JSON contact imports,
list memberships, activities and contact look-ups.

Imports behave as Constant Contact's do: bodies past ``max_body_bytes`` are silently
cut (recorded, so tests can assert it never happens), contacts are matched by e-mail
and partially updated, unsubscribed ones are never added to a list, and activities
complete after a number of polls.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import orjson

from segport_constant_contact.fake.answers import FakeAnswer, api_errors, with_query
from segport_constant_contact.fake.config import FakeConfig
from segport_constant_contact.fake.records import (
    FakeActivity,
    FakeContact,
    FakeList,
    contact_problem,
)

GENERAL_INTEREST_LIST_ID = "07936f78-662a-11eb-af0a-fa163e56c9b0"
"""The fake's "General Interest" list, always there with this id."""
NEWSLETTER_LIST_ID = "8a2b3c4d-0000-4000-8000-00000000a001"
"""The fake's "Newsletter" list, always there with this id."""
MAX_LIST_IDS = 50
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
        self.truncated_imports = 0
        """Imports whose body passed ``max_body_bytes`` (their excess contacts were lost)."""
        self.dropped_contacts = 0
        self.add_list("General Interest", GENERAL_INTEREST_LIST_ID)
        self.add_list("Newsletter", NEWSLETTER_LIST_ID)

    def add_list(self, name: str, list_id: str | None = None, description: str = "") -> str:
        with self.lock:
            list_id = list_id or str(uuid.uuid4())
            self.lists[list_id] = FakeList(list_id, name, description)
            return list_id

    def list_members(self, list_id: str) -> set[str]:
        with self.lock:
            return set(self.lists[list_id].members)

    def handle_account_summary(self, scopes: set[str]) -> FakeAnswer:
        if "account_read" not in scopes:
            return api_errors(403, "unauthorized", "The account_read scope is required")
        return FakeAnswer(200, dict(self.account))

    def handle_contact_lists(self, params: dict[str, str]) -> FakeAnswer:
        try:
            limit = int(params.get("limit", "50"))
            offset = int(params.get("cursor", "0"))
        except ValueError:
            return api_errors(400, "contacts.api.bad.request", "limit and cursor must be numbers")
        if not 1 <= limit <= 1000:
            return api_errors(400, "contacts.api.bad.request", f"limit {limit} is not 1 to 1000")
        with_count = params.get("include_membership_count") in ("all", "active")
        with self.lock:
            every = list(self.lists.values())
            name = params.get("name")
            if name:
                every = [fl for fl in every if fl.name == name]
            page = [fl.as_json(with_count) for fl in every[offset : offset + limit]]
        body: dict[str, Any] = {"lists": page, "lists_count": len(every), "_links": {}}
        if offset + limit < len(every):
            query = {"limit": str(limit), "cursor": str(offset + limit)}
            if with_count:
                query["include_membership_count"] = params["include_membership_count"]
            body["_links"]["next"] = {"href": with_query("/v3/contact_lists", query)}
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
        activity = FakeActivity(str(uuid.uuid4()), items=len(contacts))
        if self.config.failing_activities > 0:
            self.config.failing_activities -= 1
            activity.fails = True
        unsubscribed = self.config.unsubscribed
        for row, contact in enumerate(contacts, start=1):
            problem, correctable = contact_problem(contact)
            if problem is not None:
                if correctable:
                    activity.correctable_count += 1
                else:
                    activity.error_count += 1
                if len(activity.errors) < KEPT_ACTIVITY_ERRORS:
                    activity.errors.append(f"Row {row}: {problem}")
                continue
            email = str(contact["email"])
            key = email.lower()
            stored = self.contacts.get(key)
            if stored is None:
                stored = FakeContact(str(uuid.uuid4()), email, {})
                self.contacts[key] = stored
            # Partial update: only the fields sent change.
            stored.fields.update({k: v for k, v in contact.items() if k != "email"})
            activity.person_count += 1
            if key in unsubscribed:
                stored.unsubscribed = True
                activity.cannot_add_to_list_count += 1
                continue
            for list_id in list_ids:
                stored.list_ids.add(list_id)
                self.lists[list_id].members.add(key)
        self.activities[activity.activity_id] = activity
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
                        contact.list_ids.add(list_id)
                        self.lists[list_id].members.add(key)
                    else:
                        contact.list_ids.discard(list_id)
                        self.lists[list_id].members.discard(key)
            self.activities[activity.activity_id] = activity
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
