"""The uploader: sends one run's batches as JSON imports; :mod:`.activities` follows them.

Each batch's body is the records' bytes exactly as encoded, inside the import envelope
(docs/constant-contact.md, "JSON import"). An import Constant Contact accepts is tracked
at once by the session's :class:`~.activities.ActivityFollower`, which follows every
open import with one request per round, sends again those that end badly, and accounts
the finished ones (:mod:`.accounting`) so that their outcomes add up to the contacts sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import orjson

from segport_constant_contact.activities import ActivityFollower, pack
from segport_constant_contact.removals import ListRemover
from segport_constant_contact.settings import ConstantContactSettings
from segport_constant_contact.throttling import UnexplainedStreak
from segport_constant_contact.transport import ApiTransport, error_messages
from service.plugins import (
    BatchOutcome,
    Confirmation,
    DestinationContext,
    DestinationError,
    DestinationLimits,
    DestinationSession,
    ListMember,
    ListStanding,
    RemovalOutcome,
    UploadBatch,
)

IMPORT_PATH = "/activities/contacts_json_import"
BODY_PREFIX = b'{"import_data":['
TERMINAL_STATES = frozenset({"completed", "failed", "cancelled", "timed_out"})


def body_suffix(list_id: str) -> bytes:
    return b'],"list_ids":[' + orjson.dumps(list_id) + b"]}"


def envelope_size(list_id: str) -> int:
    """Bytes of an import body around its records (records are joined by one comma)."""
    return len(BODY_PREFIX) + len(body_suffix(list_id))


class ImportRefused(DestinationError):
    """Constant Contact answered an import with 400: its words, for the batch."""


class ConstantContactSession(DestinationSession):
    """Uploads batches to one list; made by ``ConstantContact.open_session``."""

    def __init__(
        self,
        ctx: DestinationContext,
        settings: ConstantContactSettings,
        limits: DestinationLimits,
        streak: UnexplainedStreak | None = None,
    ) -> None:
        list_id = ctx.export_settings.get("listId")
        if not isinstance(list_id, str) or not list_id:
            raise DestinationError("the export has no Constant Contact list (listId) set")
        self.ctx = ctx
        self.settings = settings
        self.limits = limits
        self.transport = ApiTransport(ctx, settings, streak=streak)
        self.follower = ActivityFollower(ctx, settings, self.transport, self._post_import)
        self.remover = ListRemover(ctx, settings, self.transport, list_id)
        self._suffix = body_suffix(list_id)

    def build_body(self, batch: UploadBatch) -> bytes:
        """The request body: the records' bytes exactly as encoded, inside the envelope."""
        return BODY_PREFIX + b",".join(r.encoded for r in batch.records) + self._suffix

    async def _post_import(self, body: bytes) -> str:
        """Send one import body; the new activity's id."""
        response = await self.transport.request("POST", IMPORT_PATH, content=body)
        if response.status_code == 400:
            raise ImportRefused(error_messages(response))
        if response.status_code not in (200, 201, 202):
            raise DestinationError(
                f"Constant Contact answered {response.status_code} to the contact import: "
                + error_messages(response)
            )
        activity = orjson.loads(response.content)
        activity_id = activity.get("activity_id") if isinstance(activity, dict) else None
        if not isinstance(activity_id, str) or not activity_id:
            raise DestinationError("Constant Contact's import answer has no activity_id")
        return activity_id

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
        self.follower.upload_started()
        # Compressed for re-sending while Constant Contact reads it, on another thread.
        packing = asyncio.ensure_future(pack(body))
        try:
            activity_id = await self._post_import(body)
        except ImportRefused as refused:
            packing.cancel()
            return BatchOutcome(batch_error=str(refused))
        except BaseException:
            packing.cancel()
            raise
        finally:
            self.follower.upload_finished()
        del body  # the compressed copy is what is kept
        self.follower.track(activity_id, len(batch.records), await packing)
        return BatchOutcome(receipt=activity_id)

    async def uploads_done(self) -> None:
        self.follower.all_sent()

    async def confirm(self, receipt: str) -> Confirmation:
        """The import's final counts. Raises :class:`~.errors.ImportFailed` when it ended
        ``failed``, ``cancelled`` or ``timed_out`` however often it was sent."""
        return await self.follower.outcome(receipt)

    async def remove_list_members(self, members: Sequence[ListMember]) -> list[RemovalOutcome]:
        """Take ``members`` off the list (:mod:`.removals`); never out of the account."""
        return await self.remover.remove(members)

    async def read_list_standing(self, *, members: bool) -> ListStanding:
        """The list's members and the account's unsubscribed contacts (:mod:`.removals`)."""
        return await self.remover.standing(members=members)

    async def aclose(self) -> None:
        await self.follower.aclose()
