"""An unexpected exception inside a run (not a destination error) fails it once, clearly.

Embedded mode with real parts: SQLite, the in-process job queue, JSON logs
written to a stream the test reads, and a real HTTP webhook receiver (uvicorn)
as ``SEGPORT_NOTIFY_WEBHOOK_URL``. The destination is a toy whose
``build_record`` raises, as a plugin bug would.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.coordination.events import follow_run
from service.core import Services, open_services
from service.domain import (
    Export,
    ExportRun,
    ExportRunStatus,
    ExportRunTrigger,
    FieldMapping,
    Profile,
)
from service.domain.ids import to_global_id
from service.observability.logging import configure_logging
from service.plugins import DestinationLimits, Rejection
from service.runs.embedded import in_process_runs
from service.runs.recovery import recover_runs
from tests.runs.memory_destination import Behaviour, MemoryDestination, MemoryPlugin
from tests.support.logstream import json_lines, open_log_stream
from tests.support.records import make_plain_connection, make_plain_export, make_segment
from tests.support.settings import make_settings


class BuggyRecordBuilder(MemoryDestination):
    """A toy destination with a bug: building the third record raises."""

    def __init__(self, behaviour: Behaviour, limits: DestinationLimits) -> None:
        super().__init__(behaviour, limits)
        self.built = 0

    def build_record(self, values: Mapping[str, Any]) -> dict[str, Any] | Rejection:
        self.built += 1
        if self.built == 3:
            raise KeyError(f"no template for {values['email']}")
        return super().build_record(values)


@dataclass
class Webhook:
    url: str
    received: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
async def webhook() -> AsyncIterator[Webhook]:
    received: list[dict[str, Any]] = []

    async def collect(request: Request) -> Response:
        received.append(json.loads(await request.body()))
        return Response(status_code=204)

    app = Starlette(routes=[Route("/hook", collect, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield Webhook(f"http://127.0.0.1:{port}/hook", received)
    finally:
        server.should_exit = True
        await task


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    with open_log_stream() as stream:
        yield stream


@pytest.fixture
async def services(
    tmp_path: Path, webhook: Webhook, log_stream: io.StringIO
) -> AsyncIterator[Services]:
    destination = BuggyRecordBuilder(
        Behaviour(), DestinationLimits(batch_max_records=2, batch_max_bytes=4000)
    )
    settings = make_settings(
        f"sqlite:///{tmp_path / 'crash.db'}",
        notify_webhook_url=webhook.url,
        run_heartbeat_seconds=0.2,
        schedule_tick_seconds=3600,
        log_format="json",
        log_level="INFO",
    )
    configure_logging(settings, stream=log_stream)
    async with (
        open_services(
            settings, extra_plugins=[MemoryPlugin(destination)], load_entry_points=False
        ) as opened,
        in_process_runs(opened.run_context),
    ):
        yield opened


async def seed_export(services: Services) -> Export:
    connection = make_plain_connection("memory", "Memory account")
    await services.store.save_connection(connection)
    segment = make_segment(name="Everyone", description=None)
    await services.store.save_segment(segment)
    await services.store.upsert_profiles(
        [
            Profile(
                id=f"p{i:02d}",
                attributes={"EmailAddress": f"buyer{i}@example.com"},
                segment_ids=[segment.id],
            )
            for i in range(10)
        ]
    )
    export = make_plain_export(
        connection,
        [segment.id],
        [FieldMapping(source="EmailAddress", target="email")],
        display_name="Buggy export",
    )
    await services.store.save_export(export)
    return export


async def until_done(services: Services, run_id: str) -> ExportRun:
    async def follow() -> ExportRun:
        last = None
        async for run in follow_run(services.store, services.events, run_id, recheck_seconds=0.5):
            last = run
        assert last is not None
        return last

    return await asyncio.wait_for(follow(), 20)


async def notified(webhook: Webhook) -> list[dict[str, Any]]:
    async def wait() -> None:
        while not webhook.received:
            await asyncio.sleep(0.02)

    await asyncio.wait_for(wait(), 10)
    return webhook.received


async def test_a_crash_inside_the_pipeline_fails_the_run_once_with_a_message_naming_it(
    services: Services, webhook: Webhook, log_stream: io.StringIO
) -> None:
    export = await seed_export(services)

    run = await services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "alice")
    done = await until_done(services, run.id)

    assert done.status is ExportRunStatus.FAILED
    assert done.message is not None
    assert run.id in done.message
    assert "KeyError" in done.message
    # Generic: no stack trace, no internals, no customer data.
    for leak in ("Traceback", 'File "', "no template", "@example.com"):
        assert leak not in done.message, done.message
    assert done.attempt == 1
    # The counts still add up to what was read before the crash.
    c = done.counts
    assert c.profiles_read == c.contacts_sent + c.skipped_invalid + c.skipped_duplicate


async def test_a_crashed_run_notifies_the_webhook_once_and_is_not_resumed(
    services: Services, webhook: Webhook
) -> None:
    export = await seed_export(services)
    run = await services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "alice")
    done = await until_done(services, run.id)

    recovered = await recover_runs(services.run_context, stale_after_seconds=0)
    calls = await notified(webhook)

    assert recovered == []
    assert len(calls) == 1
    assert calls[0]["event"] == "export_run_failed"
    assert calls[0]["runId"] == to_global_id("ExportRun", run.id)
    assert calls[0]["message"] == done.message
    after = await services.store.get_run(run.id)
    assert after == done
    failed = services.metrics.registry.get_sample_value(
        "segport_export_runs_total", {"status": "FAILED", "trigger": "ON_DEMAND"}
    )
    assert failed == 1


async def test_a_crashed_run_logs_its_traceback_without_the_customer_data(
    services: Services, webhook: Webhook, log_stream: io.StringIO
) -> None:
    export = await seed_export(services)
    run = await services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "alice")
    await until_done(services, run.id)
    await notified(webhook)

    crashes = [line for line in json_lines(log_stream) if line["event"] == "run_crashed"]

    assert len(crashes) == 1
    assert crashes[0]["level"] == "error"
    assert crashes[0]["run_id"] == run.id
    assert "Traceback" in crashes[0]["exception"]
    assert "build_record" in crashes[0]["exception"]
    assert "@example.com" not in log_stream.getvalue()
