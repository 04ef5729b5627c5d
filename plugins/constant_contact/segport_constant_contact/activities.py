"""Following a run's import activities: every open one with one request per round.

An import is tracked from the moment Constant Contact accepts it (not only once the
service asks to confirm it), and one background task follows them all with
``GET /activities?limit=500`` (docs/constant-contact.md, "Activities"): a round costs
one request however many imports are open. An open activity the collection does not
list (an account with more than 500 recent activities) is read on its own. So that a
run spends few of the application's shared requests, rounds wait while imports are
still being sent (at most ``confirm_max_interval_seconds`` apart, so progress still
moves), and come quickly once sending has paused: first after
``confirm_initial_interval_seconds``, then growing.

A finished activity is accounted by :func:`~.accounting.account_import`. One that ends
``failed``, ``cancelled`` or ``timed_out`` is sent again (its body is kept until it is
confirmed, zlib-compressed, within :data:`RESEND_BUFFER_BYTES`) at most
:data:`MAX_RESENDS` times, byte for byte as first sent; then its confirmation raises
:class:`~.errors.ImportFailed` with exact counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import zlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from segport_constant_contact.accounting import account_import, count
from segport_constant_contact.errors import ImportFailed
from segport_constant_contact.settings import ConstantContactSettings
from segport_constant_contact.transport import ApiTransport, error_messages
from service.plugins import Confirmation, DestinationContext, DestinationError

ACTIVITIES_PATH = "/activities"
ACTIVITIES_PAGE = 500
"""The most activities ``GET /activities`` returns at once (published maximum)."""
FINISHED = "completed"
ENDED_BADLY = frozenset({"failed", "cancelled", "timed_out"})
MAX_RESENDS = 2
"""An import that ends badly is sent again at most twice (three attempts in all)."""
RESEND_BUFFER_BYTES = 16_000_000
"""Compressed bodies kept for re-sending, at most; a body goes as soon as its import
completes. The bench's import bodies compress 10 to 16 times at zlib level 1 (richer
contacts less; at 4 times this still holds 16 full imports), so every open import of a
1,000,000-profile run (25 imports of up to 4 MB) fits in a few MB; past it an import
that ends badly cannot be sent again and fails at once. Bounded, and small against a
run's working set, so that memory stays flat in the run's size."""
COMPRESSION_LEVEL = 1
"""zlib's fastest level: a few tens of ms for a full import, on a worker thread (zlib
lets go of the GIL while it compresses)."""
ERROR_SAMPLES = 20
INTERVAL_GROWTH = 1.5

Resend = Callable[[bytes], Awaitable[str]]
"""Sends an import body again; returns the new activity id (raises when refused)."""


@dataclass
class TrackedImport:
    receipt: str
    """The first activity's id: what the service holds and confirms."""
    activity_id: str
    """The current attempt's activity."""
    sent: int | None
    body: bytes | None
    """The first attempt's body, zlib-compressed (None: not kept)."""
    done: asyncio.Future[Confirmation]
    attempts: int = 1
    processed: int = 0
    total: int = 0
    history: list[str] = field(default_factory=list)
    """How earlier attempts ended, in Constant Contact's words."""


async def pack(body: bytes) -> bytes:
    """``body`` compressed for keeping, on a worker thread."""
    return await asyncio.to_thread(zlib.compress, body, COMPRESSION_LEVEL)


async def unpack(packed: bytes) -> bytes:
    """The body :func:`pack` compressed, exactly."""
    return await asyncio.to_thread(zlib.decompress, packed)


def _retrieved(done: asyncio.Future[Confirmation]) -> None:
    """Mark an outcome's exception as seen: whoever confirms still gets it, and one nobody
    confirms any more (a run that stopped) is not reported as lost by asyncio."""
    if not done.cancelled():
        done.exception()


def _samples(activity: Mapping[str, Any]) -> list[str]:
    errors = activity.get("activity_errors") or []
    if not isinstance(errors, list):
        return []
    return [str(e.get("message", e) if isinstance(e, dict) else e) for e in errors[:ERROR_SAMPLES]]


class ActivityFollower:
    """Tracks one session's import activities and follows them in shared rounds."""

    def __init__(
        self,
        ctx: DestinationContext,
        settings: ConstantContactSettings,
        transport: ApiTransport,
        resend: Resend,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ctx = ctx
        self.settings = settings
        self.transport = transport
        self._resend = resend
        self._clock = clock
        self._imports: dict[str, TrackedImport] = {}
        self._buffered = 0
        self._uploading = 0
        self._last_upload = clock()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._new_since_round = False
        self._reported: tuple[int, int] | None = None
        self._rush = False
        """Set once every batch is sent: the next round goes at once (nothing more will come
        to share it with)."""
        self._rushed = asyncio.Event()
        self.rounds = 0
        """Status rounds made (for tests and logs)."""

    # -- what the session tells it ------------------------------------------------------
    def upload_started(self) -> None:
        self._uploading += 1
        self._changed.set()

    def all_sent(self) -> None:
        """The service sent every batch of the run: read the open imports now."""
        self._rush = True
        self._rushed.set()
        self._changed.set()

    def upload_finished(self) -> None:
        self._uploading -= 1
        self._last_upload = self._clock()
        self._changed.set()

    def track(self, receipt: str, sent: int | None, body: bytes | None) -> TrackedImport:
        """Follow ``receipt``; ``body`` is its compressed body (:func:`pack`), kept for
        re-sending while the buffer has room."""
        if body is not None and self._buffered + len(body) > RESEND_BUFFER_BYTES:
            body = None
        self._buffered += len(body) if body is not None else 0
        done: asyncio.Future[Confirmation] = asyncio.get_running_loop().create_future()
        done.add_done_callback(_retrieved)
        tracked = TrackedImport(receipt, receipt, sent, body, done)
        self._imports[receipt] = tracked
        self._new_since_round = True
        self._ensure_running()
        return tracked

    async def outcome(self, receipt: str) -> Confirmation:
        """The final account of ``receipt``; follows it if this session did not send it
        (a resumed run), with what was sent unknown."""
        tracked = self._imports.get(receipt) or self.track(receipt, None, None)
        self._ensure_running()
        try:
            return await asyncio.shield(tracked.done)
        finally:
            if tracked.done.done():
                self._forget(tracked)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for tracked in self._imports.values():
            if not tracked.done.done():
                tracked.done.cancel()

    # -- the rounds ---------------------------------------------------------------------
    def _open(self) -> list[TrackedImport]:
        return [t for t in self._imports.values() if not t.done.done()]

    def _forget(self, tracked: TrackedImport) -> None:
        if self._imports.pop(tracked.receipt, None) is not None and tracked.body is not None:
            self._buffered -= len(tracked.body)
            tracked.body = None

    def _ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._follow())

    async def _follow(self) -> None:
        interval = self.settings.confirm_initial_interval_seconds
        last_round = self._clock()
        try:
            while self._open():
                rushed, self._rush = self._rush, False
                if not rushed:
                    await self._nap(interval)
                    await self._while_sending(last_round)
                if self._cancelled():
                    return
                self._new_since_round = False
                await self._round()
                last_round = self._clock()
                interval = (
                    self.settings.confirm_initial_interval_seconds
                    if self._new_since_round or rushed
                    else min(interval * INTERVAL_GROWTH, self.settings.confirm_max_interval_seconds)
                )
        except Exception as exc:  # the waiting confirmations get it, then the task ends
            for tracked in self._open():
                tracked.done.set_exception(exc)

    async def _nap(self, seconds: float) -> None:
        """``ctx.sleep(seconds)``, ended early when every batch is sent."""
        if self._rush:
            return
        self._rushed.clear()
        sleeper = asyncio.ensure_future(self.ctx.sleep(seconds))
        rushed = asyncio.ensure_future(self._rushed.wait())
        try:
            await asyncio.wait({sleeper, rushed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, rushed):
                task.cancel()

    async def _while_sending(self, last_round: float) -> None:
        """While imports are still being sent, wait until sending pauses (no upload for
        the initial interval) or the longest interval since the last round has passed."""
        settle = self.settings.confirm_initial_interval_seconds
        longest = self.settings.confirm_max_interval_seconds
        while True:
            now = self._clock()
            if self._rush or (not self._uploading and now - self._last_upload >= settle):
                return
            left = longest - (now - last_round)
            if left <= 0:
                return
            if not self._uploading:
                left = min(left, settle - (now - self._last_upload))
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=max(left, 0.001))

    def _cancelled(self) -> bool:
        reporter = self.ctx.reporter
        if reporter is None or not reporter.cancelled():
            return False
        for tracked in self._open():
            tracked.done.set_result(
                Confirmation(
                    failure=f"cancelled before Constant Contact finished import {tracked.receipt}"
                )
            )
        return True

    async def _round(self) -> None:
        self.rounds += 1
        waiting = {t.activity_id: t for t in self._open()}
        found: dict[str, Mapping[str, Any]] = {}
        if len(waiting) > 1:
            body = await self.transport.get_json(ACTIVITIES_PATH, {"limit": ACTIVITIES_PAGE})
            for item in body.get("activities") or []:
                if isinstance(item, dict) and item.get("activity_id") in waiting:
                    found[str(item["activity_id"])] = item
        for activity_id in waiting.keys() - found.keys():
            found[activity_id] = await self._one(activity_id)
        for activity_id, activity in found.items():
            await self._update(waiting[activity_id], activity)
        await self._report()

    async def _one(self, activity_id: str) -> Mapping[str, Any]:
        response = await self.transport.request("GET", f"{ACTIVITIES_PATH}/{activity_id}")
        if response.status_code != 200:
            raise DestinationError(
                f"Constant Contact answered {response.status_code} for import activity "
                f"{activity_id}: {error_messages(response)}"
            )
        body = orjson.loads(response.content)
        if not isinstance(body, dict):
            raise DestinationError(f"Constant Contact's activity {activity_id} is not an object")
        return body

    async def _update(self, tracked: TrackedImport, activity: Mapping[str, Any]) -> None:
        state = activity.get("state")
        status = activity.get("status")
        status = status if isinstance(status, dict) else {}
        tracked.processed = count(status, "items_completed_count")
        tracked.total = count(status, "items_total_count") or (tracked.sent or 0)
        if state == FINISHED:
            tracked.done.set_result(self._confirmation(tracked, activity))
        elif state in ENDED_BADLY:
            words = "; ".join(_samples(activity)[:3])
            tracked.history.append(f"ended {state}" + (f" ({words})" if words else ""))
            if tracked.body is not None and tracked.attempts <= MAX_RESENDS:
                try:
                    tracked.activity_id = await self._resend(await unpack(tracked.body))
                except DestinationError as exc:
                    tracked.history.append(f"could not be sent again: {exc}")
                else:
                    tracked.attempts += 1
                    self._new_since_round = True
                    return
            done = self._confirmation(tracked, activity)
            tracked.done.set_exception(ImportFailed(self._failure(tracked, done), done))

    def _confirmation(self, tracked: TrackedImport, activity: Mapping[str, Any]) -> Confirmation:
        status = activity.get("status")
        figures = account_import(
            status if isinstance(status, dict) else {}, tracked.sent, tracked.activity_id
        )
        samples = (_samples(activity) + figures.notes)[: ERROR_SAMPLES + len(figures.notes)]
        if tracked.attempts > 1:
            samples.append(
                f"Constant Contact import {tracked.receipt} was sent {tracked.attempts} times: "
                + "; ".join(tracked.history)
            )
        return Confirmation(
            accepted=figures.accepted,
            rejected=figures.rejected,
            cannot_add_to_list=figures.cannot_add_to_list,
            error_samples=samples,
        )

    def _failure(self, tracked: TrackedImport, done: Confirmation) -> str:
        sent = done.accepted + done.rejected + done.cannot_add_to_list
        return (
            f"Constant Contact import {tracked.receipt} of {sent} contacts did not complete "
            f"after {tracked.attempts} attempts: "
            + "; then ".join(tracked.history)
            + f". Its last attempt counted {done.accepted} accepted, {done.rejected} rejected "
            f"and {done.cannot_add_to_list} not added to the list (unsubscribed)."
        )

    async def _report(self) -> None:
        """Show how far Constant Contact got with the imports still open."""
        reporter = self.ctx.reporter
        still = self._open()
        if reporter is None or not still:
            return
        processed = sum(t.processed for t in still)
        total = sum(t.total for t in still)
        if total == 0 or (processed, total) == self._reported:
            return
        self._reported = (processed, total)
        await reporter.destination_progress(processed, total)
