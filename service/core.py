"""The service's parts, made once per process from the settings and passed down.

No global state: the API app, the worker and the CLI each call
:func:`open_services` and hand the resulting :class:`Services` to whatever
needs it. Each port (store, queue, events, rate limiter, locks) is chosen here
once, from the settings: SQLite and in-process adapters in embedded mode,
MongoDB and Redis adapters in distributed mode.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from types import ModuleType
from typing import Any

import httpx

from service.access.auth import TokenVerifier
from service.access.crypto import CredentialCipher
from service.access.ledger_seal import LedgerSeal
from service.connections.context import destination_context
from service.connections.destinations import DestinationAccess
from service.connections.oauth import OAuthFlow
from service.coordination.events import MemoryRunEvents, RunEvents, open_run_events
from service.coordination.limiter import RateLimiters
from service.coordination.locks import Locks, MemoryLocks, make_locks
from service.coordination.queue import InlineRunQueue, RunQueue, open_run_queue
from service.coordination.redis import RedisClient, close_redis, connect_redis
from service.coordination.run_requests import RunCoordinator
from service.domain import Connection
from service.observability.collector import map_large_blocks
from service.observability.metrics import (
    Metrics,
    arq_queue_depth_refresher,
    destination_response_hook,
)
from service.plugins.api import DestinationContext, RunReporter
from service.plugins.manager import DestinationRegistry, load_destinations, service_info
from service.runs.context import RunContext, RunSettings
from service.runs.jobs import carry_inline
from service.settings import Settings
from service.store import open_store
from service.store.base import Store


@dataclass
class Services:
    settings: Settings
    store: Store
    destinations: DestinationRegistry
    cipher: CredentialCipher
    verifier: TokenVerifier
    http: httpx.AsyncClient
    redis: RedisClient | None = None
    """The process's Redis client when ``SEGPORT_REDIS_URL`` is set (distributed mode)."""
    limiters: RateLimiters = field(default_factory=RateLimiters)
    """Per-destination rate limiters (shared through Redis when it is configured)."""
    locks: Locks = field(default_factory=MemoryLocks)
    """Named locks (e.g. the per-connection token refresh), Redis-backed when configured."""
    events: RunEvents = field(default_factory=MemoryRunEvents)
    """Run events for subscriptions: in-process, or Redis pub/sub when configured."""
    queue: RunQueue = field(default_factory=lambda: InlineRunQueue(concurrency=4))
    """Where run jobs go: asyncio tasks in this process, or arq on Redis when configured."""
    metrics: Metrics = field(default_factory=Metrics)
    """Prometheus metrics of this process (``/metrics``, the worker's metrics port)."""
    destination_access: DestinationAccess = field(init=False, repr=False, compare=False)
    """The parts the connections layer reaches destinations through."""
    oauth: OAuthFlow = field(init=False, repr=False, compare=False)
    """Start and complete OAuth authorizations of connections."""
    runs: RunCoordinator = field(init=False, repr=False, compare=False)
    """Request and cancel runs (the one way runs are made)."""
    run_context: RunContext = field(init=False, repr=False, compare=False)
    """What the runs layer (pipeline, schedule, jobs) works with."""
    seal: LedgerSeal = field(init=False, repr=False, compare=False)
    """Key ids and sealed keys of the export ledgers (from the encryption keys)."""

    def __post_init__(self) -> None:
        self.seal = LedgerSeal(self.settings.encryption_keys())
        self.destination_access = DestinationAccess(
            destinations=self.destinations,
            store=self.store,
            cipher=self.cipher,
            http=self.http,
            limiters=self.limiters,
            locks=self.locks,
        )
        self.oauth = OAuthFlow(
            self.destination_access,
            redirect_uri=self.settings.oauth_redirect_uri,
            state_ttl_seconds=self.settings.oauth_state_ttl_seconds,
        )
        self.runs = RunCoordinator(self.store, self.events, self.queue, self.metrics)
        self.run_context = RunContext(
            settings=RunSettings.of(self.settings),
            store=self.store,
            events=self.events,
            queue=self.queue,
            requests=self.runs,
            find_destination=self.destinations.get,
            open_destination=self._open_destination,
            metrics=self.metrics,
            http=self.http,
            seal=self.seal,
            helper_settings=self.settings,
        )
        if isinstance(self.queue, InlineRunQueue):
            # In-process jobs carry runs here, with this process's parts.
            self.queue.bind(partial(carry_inline, self.run_context))

    async def _open_destination(
        self, connection: Connection, export_settings: Mapping[str, Any], reporter: RunReporter
    ) -> DestinationContext:
        """The destination context a run of ``connection`` hands its plugin."""
        return await destination_context(
            self.destination_access, connection, export_settings=export_settings, reporter=reporter
        )


@asynccontextmanager
async def open_services(
    settings: Settings,
    *,
    extra_plugins: Iterable[ModuleType | object] = (),
    load_entry_points: bool = True,
) -> AsyncIterator[Services]:
    """Open every part for ``settings`` (secrets already resolved) and close them after."""
    map_large_blocks()
    async with AsyncExitStack() as stack:
        store = await open_store(settings)
        stack.push_async_callback(store.close)
        metrics = Metrics()
        # Every destination plugin talks through this client: the hook counts their requests.
        http = httpx.AsyncClient(
            timeout=httpx.Timeout(30.0, connect=10.0),
            event_hooks={"response": [destination_response_hook(metrics)]},
        )
        stack.push_async_callback(http.aclose)
        redis: RedisClient | None = None
        if settings.redis_url:
            redis = connect_redis(settings.redis_url)
            stack.push_async_callback(close_redis, redis)
            metrics.add_refresher(arq_queue_depth_refresher(redis))
        services = Services(
            settings=settings,
            store=store,
            destinations=load_destinations(extra_plugins, load_entry_points),
            cipher=CredentialCipher(settings.encryption_keys()),
            verifier=TokenVerifier(settings),
            http=http,
            metrics=metrics,
            redis=redis,
            limiters=RateLimiters(
                redis,
                in_flight_lease_seconds=settings.in_flight_lease_seconds,
                on_wait=lambda key, waited: metrics.rate_limiter_wait_seconds.labels(
                    destination=key
                ).observe(waited),
            ),
            locks=make_locks(redis),
            events=open_run_events(redis),
            queue=open_run_queue(settings.redis_url, settings.worker_concurrency),
        )
        stack.push_async_callback(services.events.aclose)
        # Closed first (LIFO): in-process jobs checkpoint before events and store go.
        stack.push_async_callback(services.queue.aclose)
        services.destinations.plugin_manager.hook.startup(service=service_info(settings))
        yield services
