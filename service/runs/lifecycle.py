"""A run's lifecycle: start or resume it, carry it through the stages, end it.

A run is QUEUED, then RUNNING (each start claims the next attempt number and
a fresh heartbeat), then terminal: SUCCEEDED, FAILED, CANCELLED or SKIPPED.
The stages raise what stops them (:mod:`service.runs.errors`, destination
errors); this module turns that into the run's outcome, or leaves the run
RUNNING and released, with its checkpoint, for another job to resume.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace

import structlog

from service.connections.destinations import reconnect_advice
from service.coordination.run_requests import QUEUE_UNAVAILABLE_MESSAGE
from service.domain import (
    Connection,
    ConnectionStatus,
    Export,
    ExportRun,
    ExportRunStatus,
    SyncMode,
    utcnow,
)
from service.plugins.api import (
    AuthorizationLost,
    Destination,
    DestinationError,
    DestinationSession,
    ListStanding,
    TransientDestinationError,
)
from service.runs.checkpoint import Checkpoint
from service.runs.context import RunContext
from service.runs.errors import RunCancelled, RunFailed, TransientRunError
from service.runs.notify import notify_failure
from service.runs.stages import stream_run
from service.runs.state import PipelineReporter, RunState
from service.runs.sync import SyncPlan, start_sync
from service.store.base import RunProgress

log = structlog.get_logger(__name__)


async def execute_run(ctx: RunContext, run_id: str) -> ExportRun | None:
    """Carry run ``run_id`` to a terminal state, or leave it resumable.

    A terminal or missing run is left alone (returns it / None). A QUEUED run
    starts; a RUNNING one resumes from its checkpoint. Raises
    :class:`~service.runs.errors.RunInterrupted` (its
    :class:`~service.runs.errors.TransientRunError`, or
    :class:`~service.runs.errors.RunStopped` once ``ctx.stopping`` is set) when the
    run stops without an outcome, and re-raises task cancellation unless the run was
    asked to stop, in which case it ends CANCELLED.
    """
    store = ctx.store
    run = await store.get_run(run_id)
    if run is None or run.status.is_terminal:
        return run
    now = utcnow()
    # A job carries the run now: a note that none could be enqueued no longer holds.
    waited = {"message": None} if run.message == QUEUE_UNAVAILABLE_MESSAGE else {}
    started = await store.update_run(
        run_id,
        expected_status=[run.status],
        status=ExportRunStatus.RUNNING,
        started_at=run.started_at or now,
        attempt=run.attempt + 1,
        checkpoint=Checkpoint.from_json(run.checkpoint).beating(now).to_json(),
        **waited,
    )
    if started is None:  # cancelled or taken meanwhile
        return await store.get_run(run_id)
    await ctx.events.publish(started)
    state = RunState(ctx.store, ctx.events, started)
    try:
        await _run(ctx, state)
    except RunFailed as failed:
        return await finish(ctx, state, failed.status, failed.message)
    except AuthorizationLost as exc:
        return await finish(ctx, state, ExportRunStatus.FAILED, str(exc))
    except TransientDestinationError as exc:
        await _release(state)
        raise TransientRunError(str(exc)) from exc
    except DestinationError as exc:
        return await finish(ctx, state, ExportRunStatus.FAILED, str(exc))
    except RunCancelled:
        return await finish(ctx, state, ExportRunStatus.CANCELLED, _cancel_message(state))
    except Exception:
        await _release(state)
        raise
    except asyncio.CancelledError:
        # Either an abort (the user cancelled) or a shutdown: tell them apart by the flag.
        current = await asyncio.shield(store.get_run(run_id))
        if current is not None and current.cancel_requested:
            await asyncio.shield(
                finish(ctx, state, ExportRunStatus.CANCELLED, _cancel_message(state))
            )
        else:
            await asyncio.shield(_release(state))
        raise
    # A run that found its export's ledger reset says so (its note is in the checkpoint).
    return await finish(ctx, state, ExportRunStatus.SUCCEEDED, state.ledger_note)


def _cancel_message(state: RunState) -> str:
    return f"Cancelled after {state.counts.contacts_sent} contacts were sent."


async def _release(state: RunState) -> None:
    """Checkpoint and mark the run free for another job to resume it at once."""
    with contextlib.suppress(Exception):
        await state.write(publish=False, released=True)


async def finish(
    ctx: RunContext, state: RunState, status: ExportRunStatus, message: str | None
) -> ExportRun | None:
    """Move the run to a terminal ``status`` with its final counts, publish, notify."""
    if status is ExportRunStatus.SUCCEEDED:
        state.progress = 1.0
    else:
        state.progress = state.progress_value()
    checkpoint = state.checkpoint(released=True).to_json()
    new_errors = state.errors.take()
    if new_errors:
        await ctx.store.record_run_progress(
            state.run.id,
            RunProgress(
                counts=replace(state.counts),
                progress=state.progress,
                checkpoint=checkpoint,
                new_errors=new_errors,
            ),
        )
    done = await ctx.store.update_run(
        state.run.id,
        expected_status=[ExportRunStatus.RUNNING],
        status=status,
        finished_at=utcnow(),
        counts=replace(state.counts),
        progress=state.progress,
        message=message,
        checkpoint=checkpoint,
    )
    if done is None:
        return await ctx.store.get_run(state.run.id)
    ctx.metrics.record_run_finished(done)
    await ctx.events.publish(done)
    log.info(
        "run_finished",
        run_id=done.id,
        export_id=done.export_id,
        status=str(status),
        sent=done.counts.contacts_sent,
        read=done.counts.profiles_read,
    )
    if status is ExportRunStatus.FAILED:
        await notify_failure(ctx, done)
    await _settle_ledger(ctx, done)
    return done


async def _settle_ledger(ctx: RunContext, done: ExportRun) -> None:
    """Fold what the run journalled into its export's ledger, once the run is seen to have
    ended: nobody waits for the merge (a 1,000,000-entry first run's takes a second or
    two), and the next run finds it done. Should it fail, the journal stays durable and
    the next reader of the ledger merges it."""
    try:
        await ctx.store.settle_ledger(done.export_id)
    except Exception:
        log.warning("ledger_settle_failed", run_id=done.id, export_id=done.export_id, exc_info=True)


async def _prepare(ctx: RunContext, run: ExportRun) -> tuple[Export, Connection, Destination]:
    store = ctx.store
    export = await store.get_export(run.export_id)
    if export is None:
        raise RunFailed(f"Export {run.export_id!r} no longer exists.")
    if export.connection_id is None:
        raise RunFailed(
            f"Export {export.display_name!r} is detached from its connection; "
            "attach a connection before running it."
        )
    connection = await store.get_connection(export.connection_id)
    if connection is None:
        raise RunFailed(
            f"Connection {export.connection_id!r} of export {export.display_name!r} "
            "no longer exists."
        )
    destination = ctx.find_destination(export.destination_type)
    if connection.status is ConnectionStatus.NEEDS_REAUTHORIZATION:
        why = f": {connection.status_message}" if connection.status_message else "."
        advice = reconnect_advice(destination, connection)
        raise RunFailed(
            f"Connection {connection.display_name!r} needs re-authorization{why} "
            f"{advice[0].upper()}{advice[1:]}."
        )
    if connection.status is ConnectionStatus.PENDING_AUTHORIZATION:
        raise RunFailed(f"Connection {connection.display_name!r} has not been authorized yet.")
    if destination is None:
        raise RunFailed(
            f"Destination type {export.destination_type!r} is not installed on this server."
        )
    return export, connection, destination


async def _run(ctx: RunContext, state: RunState) -> None:
    export, connection, destination = await _prepare(ctx, state.run)
    limits = destination.limits
    total = await ctx.store.count_segment_members(export.segment_ids)
    state.counts.profiles_total = total
    if limits.max_profiles_per_export is not None and total > limits.max_profiles_per_export:
        raise RunFailed(
            f"The segments hold {total} profiles, more than the "
            f"{limits.max_profiles_per_export} that {destination.display_name} accepts "
            "in one export; nothing was sent.",
            status=ExportRunStatus.SKIPPED,
        )
    if export.sync_mode is SyncMode.MIRROR and not destination.can_remove_list_members:
        raise RunFailed(
            f"{destination.display_name} cannot remove list members, so export "
            f"{export.display_name!r} cannot mirror its segments; choose SEND_CHANGES."
        )
    plan = await start_sync(
        ctx.store, ctx.seal, export, state.run.id, full_resync=state.full_resync
    )
    if state.whole_list is not None:
        if export.sync_mode is not SyncMode.MIRROR or not destination.can_read_list_standing:
            raise RunFailed(
                f"Export {export.display_name!r} was asked for a whole-list mirror run, but "
                "it is not a MIRROR export of a destination that can list its members."
            )
        plan.whole_list_cap = state.whole_list
    if plan.note is not None:
        state.ledger_note = plan.note
    await state.write(publish=True, message=state.ledger_note)
    if state.cancel_seen:
        raise RunCancelled()

    # The ledger is read into memory while the destination is asked about its list (a
    # million entries take a second or two; so may Constant Contact's export of a list).
    loading = asyncio.create_task(plan.load_index())
    try:
        await _send(ctx, state, export, connection, destination, plan, loading)
    finally:
        loading.cancel()  # when the run ended before it was needed
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await loading


async def _send(
    ctx: RunContext,
    state: RunState,
    export: Export,
    connection: Connection,
    destination: Destination,
    plan: SyncPlan,
    loading: asyncio.Task[None],
) -> None:
    """Open the destination, learn the list's standing, and stream the run through it."""
    destination_ctx = await ctx.open_destination(
        connection, export.settings, PipelineReporter(state)
    )
    session = destination.open_session(destination_ctx)
    try:
        if destination.can_read_list_standing:
            # The destination may take a while (an export of the list, followed to its
            # end): the pipeline's watcher does not beat yet.
            async with state.beating(ctx.settings.run_heartbeat_seconds):
                await _learn_standing(plan, session)
        await loading
        with ctx.heap.held():
            await stream_run(
                ctx.store,
                ctx.settings,
                state,
                export,
                destination,
                session,
                ctx.stopping,
                plan,
                ctx.helper_settings,
            )
    finally:
        with contextlib.suppress(Exception):
            await asyncio.shield(session.aclose())


async def _learn_standing(plan: SyncPlan, session: DestinationSession) -> None:
    """Let the run ask the destination about its list: which contacts it cannot add (read
    now, when unchanged records are skipped) and its members (read now for a ledger that
    is empty, else once the run meets a record its ledger does not hold)."""

    async def standing(members: bool, cannot_add: bool) -> ListStanding:
        return await session.read_list_standing(members=members, cannot_add=cannot_add)

    plan.standing = standing
    # Only a mirror needs to know which memberships were there before it (it leaves those
    # when their contacts leave); other modes save the list's export. (The index may be
    # loading still: the store counts the entries.)
    members_now = plan.removes and not await plan.store.count_ledger(plan.export.id)
    if plan.skip_unchanged or members_now:
        await plan.read_standing(members=members_now)


async def note_retry(ctx: RunContext, run_id: str, message: str) -> None:
    """Say on an unfinished run why it waits for another attempt, and tell subscribers."""
    run = await ctx.store.update_run(
        run_id,
        expected_status=[ExportRunStatus.QUEUED, ExportRunStatus.RUNNING],
        message=message,
    )
    if run is not None:
        await ctx.events.publish(run)


async def fail_run(ctx: RunContext, run_id: str, message: str) -> ExportRun | None:
    """Fail an active run from outside the pipeline (e.g. after the last retry)."""
    run = await ctx.store.get_run(run_id)
    if run is None or run.status.is_terminal:
        return run
    if run.status is ExportRunStatus.QUEUED:
        run = await ctx.store.update_run(
            run_id, expected_status=[ExportRunStatus.QUEUED], status=ExportRunStatus.RUNNING
        )
        if run is None:
            return await ctx.store.get_run(run_id)
    return await finish(ctx, RunState(ctx.store, ctx.events, run), ExportRunStatus.FAILED, message)
