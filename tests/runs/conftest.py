"""Fixtures for run tests: a real SQLite store, the in-test destination, seeded exports."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from service.coordination.events import follow_run
from service.core import Services, open_services
from service.domain import Connection, Export, ExportRun, FieldMapping, Profile, Segment
from service.plugins import DestinationLimits
from tests.runs.memory_destination import Behaviour, MemoryDestination, MemoryPlugin
from tests.support.records import make_plain_connection, make_plain_export, make_segment
from tests.support.settings import make_settings

SMALL_LIMITS = DestinationLimits(
    max_profiles_per_export=1000, batch_max_records=7, batch_max_bytes=400, max_concurrent_uploads=2
)


@dataclass
class World:
    services: Services
    behaviour: Behaviour
    destination: MemoryDestination
    connection: Connection
    segment: Segment

    async def add_profiles(self, profiles: Sequence[tuple[str, dict[str, Any]]]) -> None:
        await self.services.store.upsert_profiles(
            [
                Profile(id=pid, attributes=attrs, segment_ids=[self.segment.id])
                for pid, attrs in profiles
            ]
        )

    async def add_export(self, **changes: Any) -> Export:
        export = make_plain_export(
            self.connection,
            [self.segment.id],
            [
                FieldMapping(source="EmailAddress", target="email"),
                FieldMapping(source="FirstName", target="first_name"),
            ],
            **changes,
        )
        await self.services.store.save_export(export)
        return export

    async def until_done(self, run_id: str, timeout: float = 20.0) -> list[ExportRun]:
        """Every state the run goes through (as a subscriber sees it), ending terminal."""
        seen: list[ExportRun] = []

        async def follow() -> None:
            async for run in follow_run(self.services.store, self.services.events, run_id):
                seen.append(run)

        await asyncio.wait_for(follow(), timeout)
        assert seen
        assert seen[-1].status.is_terminal, seen[-1]
        return seen


@pytest.fixture
def limits() -> DestinationLimits:
    return SMALL_LIMITS


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
async def world(
    tmp_path: Path, limits: DestinationLimits, settings_overrides: dict[str, Any]
) -> AsyncIterator[World]:
    behaviour = Behaviour()
    destination = MemoryDestination(behaviour, limits)
    settings = make_settings(
        f"sqlite:///{tmp_path / 'runs.db'}",
        run_read_batch_size=10,
        run_heartbeat_seconds=0.2,
        **settings_overrides,
    )
    async with open_services(
        settings, extra_plugins=[MemoryPlugin(destination)], load_entry_points=False
    ) as services:
        connection = make_plain_connection("memory", "Memory account")
        await services.store.save_connection(connection)
        segment = make_segment(name="Everyone", description=None)
        await services.store.save_segment(segment)
        yield World(services, behaviour, destination, connection, segment)


def people(count: int, start: int = 0, prefix: str = "p") -> list[tuple[str, dict[str, Any]]]:
    """Valid, distinct profiles ``p00000``.. with e-mails and first names."""
    return [
        (f"{prefix}{i:05d}", {"EmailAddress": f"person{i}@example.com", "FirstName": f"Name{i}"})
        for i in range(start, start + count)
    ]
