"""Telling admins about permanent run failures: a JSON POST to ``SEGPORT_NOTIFY_WEBHOOK_URL``.

The body carries a Slack-compatible ``text`` beside the structured fields, so
the URL can be a Slack incoming webhook or any service of one's own. Runs and
exports are named by the global ids the GraphQL API uses (``node(id:)`` finds them). A
notification that cannot be delivered is logged, never fatal to anything.
"""

from __future__ import annotations

from typing import Any

import httpx
import structlog

from service.domain import ExportRun
from service.domain.ids import to_global_id
from service.runs.context import RunContext

log = structlog.get_logger(__name__)


def failure_summary(run: ExportRun, export_name: str | None) -> dict[str, Any]:
    """The webhook's body: ids are the API's global ids, so a receiver can look them up."""
    run_id = to_global_id("ExportRun", run.id)
    export_id = to_global_id("Export", run.export_id)
    name = repr(export_name) if export_name else export_id
    counts = run.counts
    # The run's message is a sentence of its own (usually ending with a period).
    reason = (run.message or "no reason given").strip().rstrip(".")
    text = (
        f"segport: export {name} failed (run {run_id}, trigger {run.trigger}): "
        f"{reason}. Sent {counts.contacts_sent} of "
        f"{counts.profiles_total} profiles before it stopped."
    )
    return {
        "text": text,
        "event": "export_run_failed",
        "runId": run_id,
        "exportId": export_id,
        "exportName": export_name,
        "status": str(run.status),
        "trigger": str(run.trigger),
        "message": run.message,
        "finishedAt": run.finished_at.isoformat() if run.finished_at else None,
        "counts": {
            "profilesTotal": counts.profiles_total,
            "profilesRead": counts.profiles_read,
            "contactsSent": counts.contacts_sent,
            "skippedInvalid": counts.skipped_invalid,
            "skippedDuplicate": counts.skipped_duplicate,
            "acceptedByDestination": counts.accepted_by_destination,
            "rejectedByDestination": counts.rejected_by_destination,
            "cannotAddToList": counts.cannot_add_to_list,
            "fieldWarnings": counts.field_warnings,
        },
    }


async def notify_failure(ctx: RunContext, run: ExportRun) -> None:
    """POST the failure of ``run`` to the webhook, if one is configured."""
    url = ctx.settings.notify_webhook_url
    if not url:
        return
    export = await ctx.store.get_export(run.export_id)
    body = failure_summary(run, export.display_name if export else None)
    try:
        response = await ctx.http.post(url, json=body, timeout=10.0)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        # The URL may carry a token (Slack's do): log only its host.
        log.warning(
            "failure_notification_not_sent",
            run_id=run.id,
            host=httpx.URL(url).host,
            error=type(exc).__name__,
        )
