"""Who a scheduled run is requested by: the connection's export user, else the export's creator.

Runs are made by the real schedule tick (with a fixed clock) in embedded mode
(SQLite, in-process jobs) and carried by an in-test destination; ``requestedBy``
is read back over GraphQL through the ASGI app.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.access.auth import mint_token
from service.api.ids import to_global_id
from service.app import create_app
from service.coordination.events import follow_run
from service.core import Services, open_services
from service.domain import (
    Connection,
    Export,
    ExportRun,
    ExportRunStatus,
    ExportRunTrigger,
    ExportSchedule,
    FieldMapping,
    Frequency,
    Profile,
    Recurrence,
    Role,
    ScheduleMode,
    Segment,
    new_id,
)
from service.plugins import DestinationLimits
from service.runs.embedded import in_process_runs
from service.runs.schedule import ScheduleTicker
from tests.runs.memory_destination import Behaviour, MemoryDestination, MemoryPlugin
from tests.support.records import make_plain_connection, make_plain_export, make_segment
from tests.support.settings import make_settings

DAILY_AT_NINE = Recurrence(Frequency.DAILY, ["09:00"], "UTC")
BEFORE_NINE = datetime(2026, 6, 1, 8, 59, tzinfo=UTC)
AFTER_NINE = BEFORE_NINE + timedelta(minutes=2)
RUN_QUERY = "query($id: ID!) { node(id: $id) { ... on ExportRun { requestedBy trigger status } } }"


class FixedClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Scheduled:
    services: Services
    behaviour: Behaviour
    segment: Segment

    async def connection(self, export_user: str | None) -> Connection:
        connection = make_plain_connection("memory", f"Memory {new_id()}", export_user=export_user)
        await self.services.store.save_connection(connection)
        return connection

    async def daily_export(self, connection: Connection, created_by: str) -> Export:
        export = make_plain_export(
            connection,
            [self.segment.id],
            [FieldMapping(source="EmailAddress", target="email")],
            display_name=f"Daily {new_id()}",
            schedule=ExportSchedule(ScheduleMode.OWN, DAILY_AT_NINE),
            created_by=created_by,
        )
        await self.services.store.save_export(export)
        return export

    async def tick_past_nine(self) -> dict[str, ExportRun]:
        """Tick before and after 09:00; the runs the second tick made, by export id."""
        clock = FixedClock(BEFORE_NINE)
        ticker = ScheduleTicker(self.services.run_context, clock)
        assert await ticker.tick() == []
        clock.now = AFTER_NINE
        return {run.export_id: run for run in await ticker.tick()}

    async def until_done(self, run_id: str) -> ExportRun:
        last = None
        async for run in follow_run(
            self.services.store, self.services.events, run_id, recheck_seconds=0.5
        ):
            last = run
        assert last is not None
        return last

    async def graphql_run(self, run_id: str) -> dict[str, Any]:
        token = mint_token(self.services.settings, "auditor", [Role.ADMIN])
        transport = httpx.ASGITransport(app=create_app(self.services))
        async with httpx.AsyncClient(transport=transport, base_url="http://segport") as http:
            response = await http.post(
                "/graphql",
                json={"query": RUN_QUERY, "variables": {"id": to_global_id("ExportRun", run_id)}},
                headers={"Authorization": f"Bearer {token}"},
            )
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body
        node: dict[str, Any] = body["data"]["node"]
        return node


@pytest.fixture
async def scheduled(tmp_path: Path) -> AsyncIterator[Scheduled]:
    behaviour = Behaviour()
    limits = DestinationLimits(batch_max_records=10, batch_max_bytes=4000)
    destination = MemoryDestination(behaviour, limits)
    settings = make_settings(
        f"sqlite:///{tmp_path / 'schedule.db'}",
        run_heartbeat_seconds=0.2,
        schedule_tick_seconds=3600,  # the test ticks by hand with its own clock
    )
    async with (
        open_services(
            settings, extra_plugins=[MemoryPlugin(destination)], load_entry_points=False
        ) as services,
        in_process_runs(services.run_context),
    ):
        segment = make_segment(name="Subscribers", description=None)
        await services.store.save_segment(segment)
        await services.store.upsert_profiles(
            [
                Profile(
                    id=f"p{i:03d}",
                    attributes={"EmailAddress": f"reader{i}@example.com"},
                    segment_ids=[segment.id],
                )
                for i in range(25)
            ]
        )
        yield Scheduled(services, behaviour, segment)


async def test_a_scheduled_run_is_requested_by_the_connections_export_user(
    scheduled: Scheduled,
) -> None:
    connection = await scheduled.connection(export_user="erin")
    export = await scheduled.daily_export(connection, created_by="carol")

    made = await scheduled.tick_past_nine()

    run = made[export.id]
    assert run.trigger is ExportRunTrigger.EXPORT_SCHEDULE
    assert run.requested_by == "erin"
    done = await scheduled.until_done(run.id)
    assert done.status is ExportRunStatus.SUCCEEDED, done.message
    assert await scheduled.graphql_run(run.id) == {
        "requestedBy": "erin",
        "trigger": "EXPORT_SCHEDULE",
        "status": "SUCCEEDED",
    }


async def test_without_an_export_user_a_scheduled_run_is_requested_by_the_creator_and_runs(
    scheduled: Scheduled,
) -> None:
    connection = await scheduled.connection(export_user=None)
    export = await scheduled.daily_export(connection, created_by="carol")

    made = await scheduled.tick_past_nine()

    run = made[export.id]
    assert run.requested_by == "carol"
    done = await scheduled.until_done(run.id)
    assert done.status is ExportRunStatus.SUCCEEDED, done.message
    assert done.counts.contacts_sent == 25
    assert scheduled.behaviour.emails() == {f"reader{i}@example.com" for i in range(25)}
    assert (await scheduled.graphql_run(run.id))["requestedBy"] == "carol"
