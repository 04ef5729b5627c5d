"""The fake's contact exports: ``POST /activities/contact_exports`` and the CSV file it
makes, ``GET /contact_exports/{file_export_id}``, as the V3 description has them.

The export filters as published: ``list_ids`` (up to 50 lists) or ``contact_ids`` (up
to 500) or, with neither, every contact; ``status`` (alone, or with either of them)
keeps the contacts of one status (the fake knows ``all``, ``active`` and
``unsubscribed``: its contacts have no other); ``fields`` chooses the columns (all of
them when absent). The activity moves on when read, as imports do; its file can be read
once it completed, through the ``_links.results`` link of the finished activity.
"""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from segport_constant_contact.fake.answers import FakeAnswer, api_errors
from segport_constant_contact.fake.records import FakeActivity, FakeContact

EXPORT_COLUMNS = ("contact_id", "email_address", "first_name", "last_name", "job_title")
"""The columns the fake can export, in file order (all of them by default)."""
MAX_EXPORT_CONTACT_IDS = 500
MAX_EXPORT_LIST_IDS = 50
EXPORT_STATUSES = ("all", "active", "unsubscribed")
"""The ``status`` values the fake's contacts can have (the published ones are more)."""


@dataclass
class FakeExportActivity(FakeActivity):
    """A contact export: its file is made when it is asked for, and served once done."""

    file: str = ""

    def as_json(self, polls_to_complete: int) -> dict[str, Any]:
        data = super().as_json(polls_to_complete)
        # An export's status counts contacts exported, not an import's outcomes.
        data["status"] = {
            "items_total_count": data["status"]["items_total_count"],
            "items_completed_count": data["status"]["items_completed_count"],
        }
        if data["state"] == "completed":
            data["_links"]["results"] = {"href": f"/v3/contact_exports/{self.activity_id}"}
        return data


def _cell(contact: FakeContact, column: str) -> str:
    if column == "contact_id":
        return contact.contact_id
    if column == "email_address":
        return contact.email
    return str(contact.fields.get(column, ""))


def export_contacts(
    raw: bytes, contacts: dict[str, FakeContact], list_ids_known: set[str]
) -> FakeExportActivity | FakeAnswer:
    """The export activity of a request body, or the 400 it deserves."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return api_errors(400, "contacts.api.bad.request", f"malformed JSON: {exc}")
    if not isinstance(body, dict):
        return api_errors(400, "contacts.api.bad.request", "the body must be a JSON object")
    list_ids, contact_ids = body.get("list_ids"), body.get("contact_ids")
    if list_ids is not None and contact_ids is not None:
        return api_errors(
            400, "contacts.api.validation.error", "list_ids and contact_ids are exclusive"
        )
    fields = body.get("fields") or list(EXPORT_COLUMNS)
    unknown = [f for f in fields if f not in EXPORT_COLUMNS]
    if unknown:
        return api_errors(400, "contacts.api.validation.error", f"unknown fields: {unknown}")
    chosen = list(contacts.values())
    if list_ids is not None:
        if not isinstance(list_ids, list) or not 1 <= len(list_ids) <= MAX_EXPORT_LIST_IDS:
            message = f"list_ids must hold 1 to {MAX_EXPORT_LIST_IDS} lists"
            return api_errors(400, "contacts.api.validation.error", message)
        if any(list_id not in list_ids_known for list_id in list_ids):
            return api_errors(400, "contacts.api.validation.error", "list_ids: unknown list")
        wanted = set(list_ids)
        chosen = [c for c in chosen if c.list_ids & wanted]
    elif contact_ids is not None:
        if not isinstance(contact_ids, list) or len(contact_ids) > MAX_EXPORT_CONTACT_IDS:
            message = f"contact_ids holds at most {MAX_EXPORT_CONTACT_IDS} ids"
            return api_errors(400, "contacts.api.validation.error", message)
        ids = set(contact_ids)
        chosen = [c for c in chosen if c.contact_id in ids]
    status = body.get("status")
    if status is not None:
        if status not in EXPORT_STATUSES:
            message = f"status {status!r}: the fake knows {', '.join(EXPORT_STATUSES)}"
            return api_errors(400, "contacts.api.validation.error", message)
        if status != "all":
            unsubscribed = status == "unsubscribed"
            chosen = [c for c in chosen if c.unsubscribed is unsubscribed]
    columns = [c for c in EXPORT_COLUMNS if c in fields]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for contact in chosen:
        writer.writerow([_cell(contact, column) for column in columns])
    activity = FakeExportActivity(str(uuid.uuid4()), items=len(chosen), file=out.getvalue())
    return activity


def export_file(activity: FakeActivity | None, polls_to_complete: int) -> FakeAnswer:
    if not isinstance(activity, FakeExportActivity) or activity.state(polls_to_complete) != (
        "completed"
    ):
        return api_errors(404, "contacts.api.not_found", "no such export file")
    return FakeAnswer(200, csv=activity.file)
