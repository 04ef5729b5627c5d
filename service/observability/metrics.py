"""Prometheus metrics: one :class:`Metrics` per :class:`~service.core.Services`, own registry.

The API exposes them at ``GET /metrics`` (:func:`metrics_endpoint`); a worker
serves them on ``SEGPORT_WORKER_METRICS_PORT`` (:func:`start_worker_metrics_server`).
A registry of our own (not prometheus_client's global one) keeps processes and
tests independent and lists only what segport measures.

Labels are bounded on purpose: GraphQL operation names come from clients, so
only the first :data:`MAX_OPERATION_NAMES` distinct names get their own series;
any later one is counted as ``other`` (an unbounded label would let any caller
grow the process's memory).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import httpx
import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from starlette.requests import Request
from starlette.responses import Response

from service.domain import ExportRun

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

log = structlog.get_logger(__name__)

MAX_OPERATION_NAMES = 200
"""Distinct GraphQL operation names tracked before new ones are counted as ``other``."""

Refresher = Callable[["Metrics"], Awaitable[None]]
"""Brings gauges up to date right before a scrape (e.g. reads the queue length)."""

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_WAIT_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0, 300.0)


class Metrics:
    """Every metric segport records, registered on ``registry``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.graphql_operations = Counter(
            "segport_graphql_operations",
            "GraphQL operations by name, type and outcome (ok or error).",
            ["operation", "type", "outcome"],
            registry=reg,
        )
        self.graphql_operation_seconds = Histogram(
            "segport_graphql_operation_seconds",
            "GraphQL operation latency (subscriptions: until set-up ends).",
            ["operation", "type"],
            buckets=_LATENCY_BUCKETS,
            registry=reg,
        )
        self.export_runs = Counter(
            "segport_export_runs",
            "Export runs that reached a terminal status, by status and trigger.",
            ["status", "trigger"],
            registry=reg,
        )
        self.profiles_read = Counter(
            "segport_profiles_read",
            "Profiles read from the store by finished export runs.",
            registry=reg,
        )
        self.contacts_sent = Counter(
            "segport_contacts_sent",
            "Contacts sent to destinations by finished export runs.",
            registry=reg,
        )
        self.contacts_rejected = Counter(
            "segport_contacts_rejected",
            "Contacts not exported, by reason (invalid, duplicate, rejected by destination, ...).",
            ["reason"],
            registry=reg,
        )
        self.destination_requests = Counter(
            "segport_destination_requests",
            "Outgoing HTTP requests by destination host and status code.",
            ["destination", "status_code"],
            registry=reg,
        )
        self.rate_limiter_wait_seconds = Histogram(
            "segport_rate_limiter_wait_seconds",
            "Time spent waiting on the shared destination rate limiter.",
            ["destination"],
            buckets=_WAIT_BUCKETS,
            registry=reg,
        )
        self.queue_depth = Gauge(
            "segport_queue_depth",
            "Export run jobs waiting in the queue.",
            registry=reg,
        )
        self.active_subscriptions = Gauge(
            "segport_active_subscriptions",
            "GraphQL subscriptions currently open.",
            registry=reg,
        )
        self._operation_names: set[str] = set()
        self._refreshers: list[Refresher] = []

    # -- recording helpers ---------------------------------------------------
    def operation_label(self, name: str | None) -> str:
        """``name`` while fewer than MAX_OPERATION_NAMES are known, else ``other``."""
        if not name:
            return "anonymous"
        if name in self._operation_names:
            return name
        if len(self._operation_names) >= MAX_OPERATION_NAMES:
            return "other"
        self._operation_names.add(name)
        return name

    def record_operation(
        self, name: str | None, operation_type: str, outcome: str, seconds: float
    ) -> None:
        label = self.operation_label(name)
        self.graphql_operations.labels(label, operation_type, outcome).inc()
        self.graphql_operation_seconds.labels(label, operation_type).observe(seconds)

    def record_run_finished(self, run: ExportRun) -> None:
        """Count a run that reached a terminal status, and what it read, sent and dropped.

        Call exactly once per run, where the status change succeeded (the
        store's compare-and-set), so retried or duplicated jobs never count twice.
        """
        self.export_runs.labels(str(run.status), str(run.trigger)).inc()
        counts = run.counts
        self.profiles_read.inc(counts.profiles_read)
        self.contacts_sent.inc(counts.contacts_sent)
        for reason, value in (
            ("invalid", counts.skipped_invalid),
            ("duplicate", counts.skipped_duplicate),
            ("rejected_by_destination", counts.rejected_by_destination),
            ("cannot_add_to_list", counts.cannot_add_to_list),
        ):
            if value:
                self.contacts_rejected.labels(reason).inc(value)

    def record_destination_response(self, destination: str, status_code: int) -> None:
        self.destination_requests.labels(destination, str(status_code)).inc()

    @contextmanager
    def subscription_open(self) -> Iterator[None]:
        """Count an open subscription for as long as the ``with`` block lasts."""
        self.active_subscriptions.inc()
        try:
            yield
        finally:
            self.active_subscriptions.dec()

    # -- scraping -------------------------------------------------------------
    def add_refresher(self, refresher: Refresher) -> None:
        """Run ``refresher`` before every ``/metrics`` scrape of this process."""
        self._refreshers.append(refresher)

    async def refresh(self) -> None:
        for refresher in self._refreshers:
            try:
                await refresher(self)
            except Exception:  # a scrape must still answer when e.g. Redis is down
                log.warning("metrics_refresh_failed", refresher=repr(refresher), exc_info=True)

    async def refresh_forever(self, interval: float) -> None:
        """Refresh every ``interval`` seconds (workers: their metrics thread cannot await)."""
        while True:
            await self.refresh()
            await asyncio.sleep(interval)

    def render(self) -> bytes:
        """The registry in Prometheus text exposition format."""
        return generate_latest(self.registry)


async def metrics_endpoint(request: Request) -> Response:
    """``GET /metrics``: the metrics of the app's services in Prometheus text format.

    The app keeps its :class:`~service.core.Services` at ``request.app.state.services``.
    """
    metrics: Metrics = request.app.state.services.metrics
    await metrics.refresh()
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)


def start_worker_metrics_server(port: int, metrics: Metrics, addr: str = "0.0.0.0") -> WSGIServer:
    """Serve ``metrics`` on ``addr:port`` from a daemon thread (arq workers have no web app).

    Returns the server so the caller can ``shutdown()`` it. Gauges that need a
    refresher are not refreshed here (the thread has no event loop): the worker
    updates them itself.
    """
    server, _thread = start_http_server(port, addr=addr, registry=metrics.registry)
    log.info("worker_metrics_listening", port=port)
    return server


def destination_response_hook(metrics: Metrics) -> Callable[[httpx.Response], Awaitable[None]]:
    """An httpx response event hook counting requests by destination host and status code.

    Installed on ``services.http``, through which every plugin talks to its
    destination, so plugins need no metrics code. Hosts come from server
    settings only, so the label stays bounded.
    """

    async def record(response: httpx.Response) -> None:
        metrics.record_destination_response(response.request.url.host, response.status_code)

    return record


def arq_queue_depth_refresher(redis: Any, queue_name: str = "arq:queue") -> Refresher:
    """A refresher setting ``segport_queue_depth`` to the jobs waiting in arq's queue.

    arq keeps queued jobs in a sorted set (``arq:queue`` by default), scored by
    when they may start.
    """

    async def refresh(metrics: Metrics) -> None:
        metrics.queue_depth.set(await redis.zcard(queue_name))

    return refresh
