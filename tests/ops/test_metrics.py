"""Prometheus metrics: what /metrics and the worker's port expose, and what gets counted."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.access.auth import mint_token
from service.app import create_app
from service.core import Services, open_services
from service.domain import ExportRun, ExportRunStatus, ExportRunTrigger, Role, RunCounts, utcnow
from service.observability.metrics import MAX_OPERATION_NAMES, Metrics, start_worker_metrics_server
from tests.support.net import free_port
from tests.support.settings import make_settings

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
"""Sample values by metric name and sorted labels."""


def samples(text: str) -> Samples:
    """Every sample of a Prometheus text page, by name and sorted labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture
async def services(sqlite_url: str) -> AsyncIterator[Services]:
    async with open_services(make_settings(sqlite_url), load_entry_points=False) as opened:
        yield opened


@pytest.fixture
async def client(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://segport") as http:
        yield http


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return samples(response.text)


async def test_metrics_endpoint_lists_every_segport_metric(client: httpx.AsyncClient) -> None:
    text = (await client.get("/metrics")).text
    for name in (
        "segport_graphql_operations_total counter",
        "segport_graphql_operation_seconds histogram",
        "segport_export_runs_total counter",
        "segport_profiles_read_total counter",
        "segport_contacts_sent_total counter",
        "segport_contacts_rejected_total counter",
        "segport_destination_requests_total counter",
        "segport_rate_limiter_wait_seconds histogram",
        "segport_queue_depth gauge",
        "segport_active_subscriptions gauge",
    ):
        assert f"# TYPE {name}\n" in text, name
    # Our own registry: no process or platform collectors from the global one.
    assert "python_gc_objects_collected_total" not in text


async def test_graphql_operations_are_counted_by_name_and_outcome_and_timed(
    client: httpx.AsyncClient, services: Services
) -> None:
    token = mint_token(services.settings, "alice", [Role.ADMIN], ttl=timedelta(minutes=5))
    ok = await client.post(
        "/graphql",
        json={"query": "query WhoAmI { viewer { sub } }", "operationName": "WhoAmI"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert ok.json()["data"]["viewer"]["sub"] == "alice"
    await client.post("/graphql", json={"query": "query WhoAmI { viewer { sub } }"})
    got = await scrape(client)
    ok_key = (
        "segport_graphql_operations_total",
        (("operation", "WhoAmI"), ("outcome", "ok"), ("type", "query")),
    )
    error_key = (
        "segport_graphql_operations_total",
        (("operation", "WhoAmI"), ("outcome", "error"), ("type", "query")),
    )
    assert got[ok_key] == 1.0
    assert got[error_key] == 1.0, "an unauthenticated call is an error outcome"
    count_key = (
        "segport_graphql_operation_seconds_count",
        (("operation", "WhoAmI"), ("type", "query")),
    )
    assert got[count_key] == 2.0


def test_operation_names_beyond_the_cap_are_counted_as_other() -> None:
    metrics = Metrics()
    for i in range(MAX_OPERATION_NAMES + 5):
        metrics.record_operation(f"Op{i}", "query", "ok", 0.01)
    got = samples(metrics.render().decode())
    names = {
        dict(labels)["operation"]
        for (name, labels) in got
        if name == "segport_graphql_operations_total"
    }
    assert len(names) == MAX_OPERATION_NAMES + 1
    other = (
        "segport_graphql_operations_total",
        (("operation", "other"), ("outcome", "ok"), ("type", "query")),
    )
    assert got[other] == 5.0


def test_finished_runs_count_status_trigger_contacts_and_reject_reasons() -> None:
    metrics = Metrics()
    now = utcnow()
    run = ExportRun(
        id="r1",
        export_id="e1",
        status=ExportRunStatus.SUCCEEDED,
        trigger=ExportRunTrigger.REFRESH_SCHEDULE,
        requested_by=None,
        queued_at=now,
        counts=RunCounts(
            profiles_total=10,
            profiles_read=10,
            contacts_sent=6,
            skipped_invalid=3,
            skipped_duplicate=1,
            rejected_by_destination=2,
        ),
    )
    metrics.record_run_finished(run)
    got = samples(metrics.render().decode())
    runs_key = (
        "segport_export_runs_total",
        (("status", "SUCCEEDED"), ("trigger", "REFRESH_SCHEDULE")),
    )
    assert got[runs_key] == 1.0
    assert got[("segport_profiles_read_total", ())] == 10.0
    assert got[("segport_contacts_sent_total", ())] == 6.0
    rejected = {
        dict(labels)["reason"]: value
        for (name, labels), value in got.items()
        if name == "segport_contacts_rejected_total"
    }
    assert rejected == {"invalid": 3.0, "duplicate": 1.0, "rejected_by_destination": 2.0}


@pytest.fixture(scope="module")
def destination() -> Iterator[str]:
    """A real HTTP server standing in for a destination: 202 on /ok, 429 elsewhere (it keeps
    no state, so the module shares one)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(202 if self.path == "/ok" else 429)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_every_request_through_services_http_is_counted_by_host_and_status(
    services: Services, client: httpx.AsyncClient, destination: str
) -> None:
    await services.http.post(f"{destination}/ok")
    await services.http.post(f"{destination}/ok")
    await services.http.post(f"{destination}/slow-down")
    got = await scrape(client)
    key = "segport_destination_requests_total"
    assert got[(key, (("destination", "127.0.0.1"), ("status_code", "202")))] == 2.0
    assert got[(key, (("destination", "127.0.0.1"), ("status_code", "429")))] == 1.0


async def test_refreshers_update_gauges_before_each_scrape_and_a_failing_one_is_survived(
    services: Services, client: httpx.AsyncClient
) -> None:
    async def broken(metrics: Metrics) -> None:
        raise ConnectionError("redis down")

    async def depth(metrics: Metrics) -> None:
        metrics.queue_depth.set(7)

    services.metrics.add_refresher(broken)
    services.metrics.add_refresher(depth)
    got = await scrape(client)
    assert got[("segport_queue_depth", ())] == 7.0


async def test_worker_metrics_server_serves_the_registry_on_its_port() -> None:
    metrics = Metrics()
    metrics.contacts_sent.inc(42)
    port = free_port()
    server = start_worker_metrics_server(port, metrics, addr="127.0.0.1")
    try:
        async with httpx.AsyncClient() as http:
            response = await http.get(f"http://127.0.0.1:{port}/metrics")
        assert response.status_code == 200
        assert samples(response.text)[("segport_contacts_sent_total", ())] == 42.0
    finally:
        server.shutdown()
        server.server_close()
