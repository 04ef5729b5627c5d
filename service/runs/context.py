"""What the runs layer works with: a narrow context, built once by the wiring.

Runs never see the whole service container: :class:`RunContext` holds only
the parts a run, the schedule and the jobs use, and :class:`RunSettings` only
the settings they read. :mod:`service.core` fills both in, including how a
stored connection becomes the :class:`~service.plugins.api.DestinationContext`
a plugin gets (so runs do not depend on how the connections layer builds it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from service.access.ledger_seal import LedgerSeal
from service.coordination.events import RunEvents
from service.coordination.queue import RunQueue
from service.coordination.run_requests import RunCoordinator
from service.domain import Connection
from service.observability.metrics import Metrics
from service.plugins.api import Destination, DestinationContext, RunReporter
from service.runs.heap import FrozenHeap
from service.settings import Settings
from service.store.base import Store

DestinationOpener = Callable[
    [Connection, Mapping[str, Any], RunReporter], Awaitable[DestinationContext]
]
"""Opens the destination context of ``connection`` for a run with these export settings,
reporting through ``reporter``."""

DestinationFinder = Callable[[str], Destination | None]
"""The installed destination of a type key, or None."""


@dataclass(frozen=True, slots=True)
class RunSettings:
    """The settings the pipeline, the schedule and the jobs read (see :class:`Settings`)."""

    run_read_batch_size: int
    run_queue_size: int
    run_heartbeat_seconds: float
    schedule_tick_seconds: float
    job_max_tries: int
    job_retry_base_seconds: float
    notify_webhook_url: str | None
    split_min_profiles: int = 0

    @classmethod
    def of(cls, settings: Settings) -> RunSettings:
        return cls(
            run_read_batch_size=settings.run_read_batch_size,
            run_queue_size=settings.run_queue_size,
            run_heartbeat_seconds=settings.run_heartbeat_seconds,
            schedule_tick_seconds=settings.schedule_tick_seconds,
            job_max_tries=settings.job_max_tries,
            job_retry_base_seconds=settings.job_retry_base_seconds,
            notify_webhook_url=settings.notify_webhook_url,
            split_min_profiles=settings.split_min_profiles,
        )


@dataclass(frozen=True, slots=True)
class RunContext:
    """The parts of the service that runs use."""

    settings: RunSettings
    store: Store
    events: RunEvents
    """Where run changes are published (subscriptions)."""
    queue: RunQueue
    """Where run jobs go (the recovery sweep gives unfinished runs a job)."""
    requests: RunCoordinator
    """The one way runs are made (the schedule requests through it)."""
    find_destination: DestinationFinder
    open_destination: DestinationOpener
    metrics: Metrics
    http: httpx.AsyncClient
    """The shared HTTP client (failure notifications go out through it)."""
    seal: LedgerSeal
    """Key ids and sealed keys of the export ledgers."""
    helper_settings: Settings | None = None
    """What a helper process opens the store and the ledger seal with (the service's
    settings, secrets resolved); None: work stays in this process."""
    heap: FrozenHeap = field(default_factory=FrozenHeap)
    """Keeps the collector's full collections to a run's own objects while runs stream."""
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the process is asked to stop (``segport worker`` on SIGTERM): runs start
    no more batches, commit the ones under way and stop resumable."""
