"""Permanent failures are POSTed to the notify webhook (a real local HTTP server)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from service.domain import ExportRunStatus, ExportRunTrigger
from service.domain.ids import to_global_id
from service.plugins import DestinationError
from tests.runs.conftest import World, people

received: list[dict[str, Any]] = []
arrived = threading.Event()


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        received.append(json.loads(self.rfile.read(length)))
        arrived.set()
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def webhook_url() -> Iterator[str]:
    received.clear()
    arrived.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hooks/segport"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def settings_overrides(webhook_url: str) -> dict[str, Any]:
    return {"notify_webhook_url": webhook_url}


async def test_a_failed_run_posts_a_slack_compatible_summary(world: World) -> None:
    await world.add_profiles(people(20))
    export = await world.add_export(display_name="Weekly newsletter")
    world.behaviour.fail_upload_number = 1
    world.behaviour.fail_with = DestinationError("The list was deleted.")

    run = await world.services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "alice")
    done = (await world.until_done(run.id))[-1]

    assert done.status is ExportRunStatus.FAILED
    # The terminal state is published first; the notification follows it.
    assert await asyncio.to_thread(arrived.wait, 10)
    assert len(received) == 1
    body = received[0]
    assert body["runId"] == to_global_id("ExportRun", run.id)
    assert body["status"] == "FAILED"
    assert body["message"] == "The list was deleted."
    assert "Weekly newsletter" in body["text"]
    assert "The list was deleted." in body["text"]
