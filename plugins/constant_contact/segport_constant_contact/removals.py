"""Taking contacts off the export's list (mirror exports), through the published calls.

Constant Contact removes list members by contact id (``POST
/activities/remove_list_memberships``, at most 500 ``contact_ids`` per request), while
segport knows its members by e-mail address. So one call of
:meth:`ListRemover.remove` first finds the ids of the list's members with one
``POST /activities/contact_exports`` of the list (only the id and address columns),
follows that activity, reads its CSV file once (``_links.results``), keeps the rows of
the addresses asked for, then removes them 500 at a time and follows those activities
with one ``GET /activities`` per round. Removing 10,000 leavers from a list of a million
takes 20 removal requests and a handful of others (docs/constant-contact.md,
"Removals").

An address that is not a member of the list (never added, unsubscribed, already taken
off) needs nothing: it is reported removed. Every request goes through the transport,
so through the shared rate limiter and the daily quota. A contact is never deleted
from the account.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import orjson

from segport_constant_contact.settings import ConstantContactSettings
from segport_constant_contact.transport import ApiTransport, error_messages
from service.plugins import (
    DestinationContext,
    DestinationError,
    ListMember,
    ListStanding,
    RemovalOutcome,
)

EXPORT_PATH = "/activities/contact_exports"
REMOVE_PATH = "/activities/remove_list_memberships"
ACTIVITIES_PATH = "/activities"
EXPORT_FIELDS = ("contact_id", "email_address")
"""The columns asked of the export: the member's id and its address."""
MAX_CONTACT_IDS = 500
"""``source.contact_ids`` of one removal request (published maximum)."""
ACTIVITIES_PAGE = 500
"""``GET /activities?limit=``: the published maximum, so one round reads them all."""
TERMINAL_STATES = frozenset({"completed", "failed", "cancelled", "timed_out"})
INTERVAL_GROWTH = 2.0


def _normalized(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def _columns(csv_file: bytes) -> tuple[Iterator[list[str]], list[str]] | None:
    """The rows of an export file and its normalized header (None: the file is empty)."""
    text = io.TextIOWrapper(io.BytesIO(csv_file), encoding="utf-8-sig", newline="")
    reader = csv.reader(text)
    header = next(reader, None)
    return None if header is None else (reader, header)


def _email_column(header: list[str]) -> int:
    names = [_normalized(column) for column in header]
    for name in ("emailaddress", "email"):
        if name in names:
            return names.index(name)
    raise DestinationError(
        "Constant Contact's contact export has no e-mail address column "
        f"(columns: {', '.join(header)})"
    )


def addresses(csv_file: bytes) -> Iterator[str]:
    """Every lower-cased address of an export file, read lazily (a million-member list is
    never one list of strings)."""
    found = _columns(csv_file)
    if found is None:
        return
    reader, header = found
    column = _email_column(header)
    for row in reader:
        if len(row) > column and (address := row[column].strip().lower()):
            yield address


def member_ids(csv_file: bytes, wanted: Iterable[str]) -> dict[str, str]:
    """Lower-cased address -> contact id for the ``wanted`` addresses found in an export
    file. The columns are found by name (case, spaces and underscores aside). The file is
    decoded as it is read: a million-member list is never one big string."""
    keys = {address.lower() for address in wanted}
    text = io.TextIOWrapper(io.BytesIO(csv_file), encoding="utf-8-sig", newline="")
    reader = csv.reader(text)
    header = next(reader, None)
    if header is None:
        return {}
    names = [_normalized(column) for column in header]
    try:
        id_column = names.index("contactid")
        email_column = next(names.index(n) for n in ("emailaddress", "email") if n in names)
    except (ValueError, StopIteration):
        raise DestinationError(
            "Constant Contact's contact export has no contact id or e-mail address column "
            f"(columns: {', '.join(header)})"
        ) from None
    found: dict[str, str] = {}
    for row in reader:
        if len(row) <= max(id_column, email_column):
            continue
        address = row[email_column].strip().lower()
        if address in keys:
            found[address] = row[id_column].strip()
    return found


class ListRemover:
    """Removes members of one list, for one run's session."""

    def __init__(
        self,
        ctx: DestinationContext,
        settings: ConstantContactSettings,
        transport: ApiTransport,
        list_id: str,
    ) -> None:
        self.ctx = ctx
        self.settings = settings
        self.transport = transport
        self.list_id = list_id

    async def standing(self, *, members: bool) -> ListStanding:
        """The list's members (one export of the list, address column only, when asked)
        and the account's unsubscribed contacts (one export with ``status:
        unsubscribed``): Constant Contact never adds those to a list."""
        unsubscribed = await self._export_file({"status": "unsubscribed"}, ("email_address",))
        listed = b""
        if members:
            listed = await self._export_file({"list_ids": [self.list_id]}, ("email_address",))
        return ListStanding(members=addresses(listed), cannot_add=addresses(unsubscribed))

    async def remove(self, members: Sequence[ListMember]) -> list[RemovalOutcome]:
        if not members:
            return []
        file = await self._export_file({"list_ids": [self.list_id]}, EXPORT_FIELDS)
        ids = member_ids(file, (m.key for m in members))
        outcomes = {m.key: RemovalOutcome(m.key, removed=True) for m in members if m.key not in ids}
        pending = [m.key for m in members if m.key in ids]
        activities: dict[str, list[str]] = {}
        for start in range(0, len(pending), MAX_CONTACT_IDS):
            keys = pending[start : start + MAX_CONTACT_IDS]
            activity_id = await self._post_removal([ids[k] for k in keys])
            activities[activity_id] = keys
        for activity_id, activity in (await self._follow(activities.keys())).items():
            keys = activities[activity_id]
            state = activity.get("state")
            if state == "completed":
                outcomes.update((k, RemovalOutcome(k, removed=True)) for k in keys)
                continue
            words = "; ".join(str(e) for e in activity.get("activity_errors") or [])
            reason = f"Constant Contact's removal activity ended {state}" + (
                f": {words}" if words else ""
            )
            outcomes.update((k, RemovalOutcome(k, removed=False, reason=reason)) for k in keys)
        return [outcomes[m.key] for m in members]

    async def _export_file(self, which: Mapping[str, Any], fields: Sequence[str]) -> bytes:
        """The CSV file of one contact export of the contacts ``which`` filters."""
        body = orjson.dumps({**which, "fields": list(fields)})
        response = await self.transport.request("POST", EXPORT_PATH, content=body)
        activity = self._activity(response, "the contact export of the list")
        activity_id = str(activity["activity_id"])
        done = (await self._follow([activity_id]))[activity_id]
        if done.get("state") != "completed":
            words = "; ".join(str(e) for e in done.get("activity_errors") or [])
            raise DestinationError(
                f"Constant Contact's contact export of the list ended {done.get('state')}"
                + (f": {words}" if words else "")
            )
        href = _results_href(done)
        if href is None:
            raise DestinationError("Constant Contact's finished contact export has no results link")
        file = await self.transport.request("GET", href)
        if file.status_code != 200:
            raise DestinationError(
                f"Constant Contact answered {file.status_code} for the contact export file: "
                + error_messages(file)
            )
        return file.content

    async def _post_removal(self, contact_ids: list[str]) -> str:
        body = orjson.dumps({"source": {"contact_ids": contact_ids}, "list_ids": [self.list_id]})
        response = await self.transport.request("POST", REMOVE_PATH, content=body)
        return str(self._activity(response, "the removal from the list")["activity_id"])

    def _activity(self, response: Any, what: str) -> Mapping[str, Any]:
        if response.status_code not in (200, 201, 202):
            raise DestinationError(
                f"Constant Contact answered {response.status_code} to {what}: "
                + error_messages(response)
            )
        activity = orjson.loads(response.content)
        if not isinstance(activity, dict) or not activity.get("activity_id"):
            raise DestinationError(f"Constant Contact's answer to {what} has no activity_id")
        return activity

    async def _follow(self, activity_ids: Iterable[str]) -> dict[str, Mapping[str, Any]]:
        """Each activity as it ended: one ``GET /activities`` per round for all of them
        (an activity the page does not show is read alone), waiting between rounds."""
        waiting = set(activity_ids)
        ended: dict[str, Mapping[str, Any]] = {}
        interval = self.settings.confirm_initial_interval_seconds
        while waiting:
            body = await self.transport.get_json(ACTIVITIES_PATH, {"limit": ACTIVITIES_PAGE})
            seen = {
                str(item["activity_id"]): item
                for item in body.get("activities") or []
                if isinstance(item, dict) and item.get("activity_id") in waiting
            }
            for activity_id in waiting - seen.keys():
                seen[activity_id] = await self.transport.get_json(
                    f"{ACTIVITIES_PATH}/{activity_id}"
                )
            for activity_id, activity in seen.items():
                if activity.get("state") in TERMINAL_STATES:
                    ended[activity_id] = activity
                    waiting.discard(activity_id)
            if waiting:
                await self.ctx.sleep(interval)
                interval = min(
                    interval * INTERVAL_GROWTH, self.settings.confirm_max_interval_seconds
                )
        return ended


def _results_href(activity: Mapping[str, Any]) -> str | None:
    links = activity.get("_links")
    results = links.get("results") if isinstance(links, dict) else None
    href = results.get("href") if isinstance(results, dict) else None
    return href if isinstance(href, str) and href else None
