"""Uploads one run's members to an audience, and archives those a mirror run removes.

Each batch is one synchronous ``POST /lists/{list_id}`` of at most 500 members with
``update_existing``; Mailchimp answers with the members created, updated and refused.
Refusals are counted per member: addresses Mailchimp will not subscribe whatever we
send (a compliance state, a permanently deleted contact) as ``cannotAddToList``,
the others as rejected, each with Mailchimp's words. A mirror removal archives the
member (``DELETE .../members/{subscriber_hash}``), never deletes it permanently.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import tarfile
from collections.abc import Sequence
from typing import Any

import orjson

from segport_mailchimp import account
from segport_mailchimp.errors import MailchimpError
from segport_mailchimp.fields import TEXT_MAX_LENGTH, MergeField, normalize_merge_fields
from segport_mailchimp.settings import MailchimpSettings
from segport_mailchimp.transport import ApiTransport
from service.plugins import (
    BatchOutcome,
    DestinationContext,
    DestinationError,
    DestinationSession,
    FieldWarning,
    ListMember,
    RecordRejection,
    Rejection,
    RemovalOutcome,
    TransientDestinationError,
    UploadBatch,
)

CANNOT_ADD_WORDS = ("compliance state", "permanently deleted", "forgotten")
"""How Mailchimp's per-member errors say an address cannot be (re)subscribed through the
API. Read from the error text: the fact sheet names no error code for them (keep this
list easy to change)."""


def subscriber_hash(email: str) -> str:
    """The MD5 of the lower-cased address: how Mailchimp names a member in paths."""
    return hashlib.md5(email.strip().lower().encode(), usedforsecurity=False).hexdigest()


def tags_of(setting: Any) -> list[str]:
    """The ``tags`` export setting (comma-separated) as a list, blanks dropped."""
    if not isinstance(setting, str):
        return []
    return [tag.strip() for tag in setting.split(",") if tag.strip()]


class MailchimpSession(DestinationSession):
    def __init__(
        self, ctx: DestinationContext, settings: MailchimpSettings, *, oauth: bool = False
    ) -> None:
        self._ctx = ctx
        self._settings = settings
        self._transport = ApiTransport(ctx, settings, oauth=oauth)
        self._list_id = str(ctx.export_settings.get("listId", ""))
        self._status = str(ctx.export_settings.get("statusIfNew", ""))
        self._tags = tags_of(ctx.export_settings.get("tags"))
        self._fields: dict[str, MergeField] | None = None
        self._fields_lock = asyncio.Lock()

    @property
    def attempts(self) -> int:
        return self._transport.attempts

    async def merge_fields(self) -> dict[str, MergeField]:
        """The audience's merge fields by tag, read once per session."""
        async with self._fields_lock:
            if self._fields is None:
                found = await account.merge_fields(self._transport, self._list_id)
                self._fields = {f.tag: f for f in found}
            return self._fields

    async def upload(self, batch: UploadBatch) -> BatchOutcome:
        fields = await self.merge_fields()
        members: list[dict[str, Any]] = []
        profiles: dict[str, str] = {}
        left_out: list[FieldWarning] = []
        plain = {tag for tag, spec in fields.items() if spec.type == "text"}
        status, tags, loads = self._status, self._tags, orjson.loads
        for record in batch.records:
            built = loads(record.encoded)
            merge = built.get("merge_fields") or {}
            # Text that needs nothing (build_member has stripped it) is sent as built; the
            # rest is normalized by its field's type, invalid optional values left out.
            if not all(
                tag in plain and type(value) is str and len(value) <= TEXT_MAX_LENGTH
                for tag, value in merge.items()
            ):
                merge, warnings = normalize_merge_fields(merge, fields)
                left_out.extend(
                    FieldWarning(tag, invalid.code, invalid.why, record.profile_id)
                    for tag, invalid in warnings
                )
            email = built["email_address"]
            member: dict[str, Any] = {
                "email_address": email,
                "status_if_new": status,
                "merge_fields": merge,
            }
            if tags:
                member["tags"] = tags
            members.append(member)
            profiles[email.lower()] = record.profile_id
        try:
            answer = await self._transport.call(
                "POST",
                f"/lists/{self._list_id}",
                json={"members": members, "update_existing": True},
            )
        except MailchimpError as exc:
            return BatchOutcome(batch_error=str(exc))
        outcome = _outcome(answer, profiles)
        outcome.field_warnings = left_out
        return outcome

    async def remove_list_members(self, members: Sequence[ListMember]) -> list[RemovalOutcome]:
        """Archive each member, as many at once as the in-flight cap lets through (or in one
        batch operation, followed to its end, with ``archive_with_batch_operations``)."""
        if self._settings.archive_with_batch_operations:
            return await self._archive_in_batch([m.key for m in members])
        return list(await asyncio.gather(*(self._archive(member.key) for member in members)))

    async def _archive_in_batch(self, keys: list[str]) -> list[RemovalOutcome]:
        operations = [
            {
                "method": "DELETE",
                "path": f"/lists/{self._list_id}/members/{subscriber_hash(key)}",
                "operation_id": key,
            }
            for key in keys
        ]
        batch = await self._transport.call("POST", "/batches", json={"operations": operations})
        wait = self._settings.batch_poll_initial_seconds
        while batch.get("status") != "finished":
            await self._ctx.sleep(wait)
            wait = min(wait * 2, self._settings.batch_poll_max_seconds)
            batch = await self._transport.call("GET", f"/batches/{batch['id']}")
        results = await batch_results(self._ctx, str(batch.get("response_body_url") or ""))
        outcomes = []
        for key in keys:
            result = results.get(key)
            if result is None:
                outcomes.append(RemovalOutcome(key, False, "Mailchimp's batch has no result"))
                continue
            status, words = result
            # 404: not a member (any more), which counts as removed.
            removed = status < 300 or status == 404
            outcomes.append(RemovalOutcome(key, removed, None if removed else words))
        return outcomes

    async def _archive(self, key: str) -> RemovalOutcome:
        path = f"/lists/{self._list_id}/members/{subscriber_hash(key)}"
        try:
            await self._transport.call("DELETE", path)
        except MailchimpError as exc:
            if exc.status == 404:
                return RemovalOutcome(key, removed=True)  # not a member (any more)
            return RemovalOutcome(key, removed=False, reason=str(exc))
        return RemovalOutcome(key, removed=True)


async def batch_results(ctx: DestinationContext, url: str) -> dict[str, tuple[int, str]]:
    """A finished batch's per-operation results (the gzipped tar at ``response_body_url``):
    operation id to (status code, Mailchimp's words)."""
    if not url.startswith(("https://", "http://")):
        raise DestinationError("Mailchimp's finished batch has no results to download")
    answer = await ctx.http.get(url)
    if answer.status_code != 200:
        raise TransientDestinationError(f"Mailchimp's batch results answered {answer.status_code}")
    results: dict[str, tuple[int, str]] = {}
    with tarfile.open(fileobj=io.BytesIO(answer.content), mode="r:gz") as archive:
        for entry in archive.getmembers():
            handle = archive.extractfile(entry) if entry.isfile() else None
            if handle is None:
                continue
            for item in orjson.loads(handle.read()):
                results[str(item.get("operation_id"))] = (
                    int(item.get("status_code", 0)),
                    str(item.get("response") or ""),
                )
    return results


def _outcome(answer: Any, profiles: dict[str, str]) -> BatchOutcome:
    if not isinstance(answer, dict):
        return BatchOutcome(batch_error=f"Mailchimp's answer is not an object: {answer!r}")
    accepted = int(answer.get("total_created", 0)) + int(answer.get("total_updated", 0))
    rejected: list[RecordRejection] = []
    cannot_add: list[RecordRejection] = []
    accounted: set[str] = set()
    for item in answer.get("new_members", []) + answer.get("updated_members", []):
        accounted.add(str(item.get("email_address", "")).lower())
    for error in answer.get("errors") or []:
        email = str(error.get("email_address", ""))
        accounted.add(email.lower())
        words = str(error.get("error", "refused"))
        field = error.get("field") or None
        if error.get("field_message"):
            words += f" ({field}: {error['field_message']})"
        profile = profiles.get(email.lower())
        if any(marker in words.lower() for marker in CANNOT_ADD_WORDS):
            cannot_add.append(RecordRejection(profile, Rejection("CANNOT_ADD", words, field)))
        else:
            code = str(error.get("error_code") or "REJECTED")
            rejected.append(RecordRejection(profile, Rejection(code, words, field)))
    # Every member sent is counted once: one Mailchimp did not mention is not accepted.
    for email, profile in profiles.items():
        if email not in accounted:
            rejected.append(
                RecordRejection(
                    profile,
                    Rejection("UNACCOUNTED", "Mailchimp's answer does not mention this member"),
                )
            )
    return BatchOutcome(accepted=accepted, rejected=rejected, cannot_add_to_list=cannot_add)
