"""The uploader: sends one run's batches as JSON imports and follows their activities.

Accounting of an activity (``confirm``): Constant Contact's ``person_count`` counts the
contacts it processed, which includes unsubscribed contacts it updated but could not add
to the list (``cannot_add_to_list_count``); contacts it refused are counted apart, in
``error_count`` and ``correctable_count`` (bad e-mail or date formats). So, for the
contacts sent in one import::

    accepted          = person_count - cannot_add_to_list_count
    rejected          = error_count + correctable_count
    cannot_add_to_list = cannot_add_to_list_count
    accepted + rejected + cannot_add_to_list = person_count + error_count + correctable_count
                                             = contacts sent

When this session sent the import it knows how many contacts went out; any contact the
activity does not account for (which would mean Constant Contact dropped it) is counted
as rejected with an error sample saying so, never silently lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from segport_constant_contact.settings import ConstantContactSettings
from segport_constant_contact.transport import ApiTransport, error_messages
from service.plugins import (
    BatchOutcome,
    Confirmation,
    DestinationContext,
    DestinationError,
    DestinationLimits,
    DestinationSession,
    UploadBatch,
)

IMPORT_PATH = "/activities/contacts_json_import"
BODY_PREFIX = b'{"import_data":['
TERMINAL_STATES = frozenset({"completed", "failed", "cancelled", "timed_out"})
ERROR_SAMPLES = 20
CONFIRM_INTERVAL_GROWTH = 1.5


def body_suffix(list_id: str) -> bytes:
    return b'],"list_ids":[' + orjson.dumps(list_id) + b"]}"


def envelope_size(list_id: str) -> int:
    """Bytes of an import body around its records (records are joined by one comma)."""
    return len(BODY_PREFIX) + len(body_suffix(list_id))


def _count(status: Mapping[str, Any], name: str) -> int:
    value = status.get(name, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class ConstantContactSession(DestinationSession):
    """Uploads batches to one list; made by ``ConstantContact.open_session``."""

    def __init__(
        self,
        ctx: DestinationContext,
        settings: ConstantContactSettings,
        limits: DestinationLimits,
    ) -> None:
        list_id = ctx.export_settings.get("listId")
        if not isinstance(list_id, str) or not list_id:
            raise DestinationError("the export has no Constant Contact list (listId) set")
        self.ctx = ctx
        self.settings = settings
        self.limits = limits
        self.transport = ApiTransport(ctx, settings)
        self._suffix = body_suffix(list_id)
        self._sent: dict[str, int] = {}

    def build_body(self, batch: UploadBatch) -> bytes:
        """The request body: the records' bytes exactly as encoded, inside the envelope."""
        return BODY_PREFIX + b",".join(r.encoded for r in batch.records) + self._suffix

    async def upload(self, batch: UploadBatch) -> BatchOutcome:
        if not batch.records:
            return BatchOutcome()
        body = self.build_body(batch)
        # Past 4 MB Constant Contact drops contacts without a word, so an oversized batch
        # is a bug upstream that must stop the run rather than lose people.
        if len(batch.records) > self.limits.batch_max_records:
            raise DestinationError(
                f"batch of {len(batch.records)} contacts exceeds the "
                f"{self.limits.batch_max_records} a Constant Contact import accepts"
            )
        if len(body) >= self.limits.batch_max_bytes:
            raise DestinationError(
                f"batch body of {len(body)} bytes is not under the "
                f"{self.limits.batch_max_bytes} bytes a Constant Contact import accepts"
            )
        response = await self.transport.request("POST", IMPORT_PATH, content=body)
        if response.status_code == 400:
            return BatchOutcome(batch_error=error_messages(response))
        if response.status_code not in (200, 201, 202):
            raise DestinationError(
                f"Constant Contact answered {response.status_code} to the contact import: "
                + error_messages(response)
            )
        activity = orjson.loads(response.content)
        activity_id = activity.get("activity_id") if isinstance(activity, dict) else None
        if not isinstance(activity_id, str) or not activity_id:
            raise DestinationError("Constant Contact's import answer has no activity_id")
        self._sent[activity_id] = len(batch.records)
        return BatchOutcome(receipt=activity_id)

    async def confirm(self, receipt: str) -> Confirmation:
        interval = self.settings.confirm_initial_interval_seconds
        while True:
            response = await self.transport.request("GET", f"/activities/{receipt}")
            if response.status_code != 200:
                raise DestinationError(
                    f"Constant Contact answered {response.status_code} for import activity "
                    f"{receipt}: {error_messages(response)}"
                )
            activity = orjson.loads(response.content)
            state = activity.get("state")
            if state in TERMINAL_STATES:
                return self._confirmation(receipt, activity)
            await self.ctx.sleep(interval)
            reporter = self.ctx.reporter
            if reporter is not None and reporter.cancelled():
                return Confirmation(
                    failure=f"cancelled before Constant Contact finished import {receipt}"
                )
            interval = min(
                interval * CONFIRM_INTERVAL_GROWTH, self.settings.confirm_max_interval_seconds
            )

    def _confirmation(self, receipt: str, activity: Mapping[str, Any]) -> Confirmation:
        status = activity.get("status") or {}
        cannot_add = _count(status, "cannot_add_to_list_count")
        accepted = max(0, _count(status, "person_count") - cannot_add)
        rejected = _count(status, "error_count") + _count(status, "correctable_count")
        errors = activity.get("activity_errors") or []
        samples = [str(e.get("message", e) if isinstance(e, dict) else e) for e in errors]
        samples = samples[:ERROR_SAMPLES]
        sent = self._sent.pop(receipt, None)
        if sent is not None and accepted + rejected + cannot_add < sent:
            missing = sent - (accepted + rejected + cannot_add)
            rejected += missing
            samples.append(
                f"{missing} of {sent} contacts sent are not accounted for by "
                f"Constant Contact import {receipt}"
            )
        state = activity.get("state")
        failure = None
        if state != "completed":
            failure = f"Constant Contact import {receipt} ended {state}"
            if samples:
                failure += ": " + "; ".join(samples[:3])
        return Confirmation(
            accepted=accepted,
            rejected=rejected,
            cannot_add_to_list=cannot_add,
            error_samples=samples,
            failure=failure,
        )
