"""The wiring hands runs one narrow context and one coordinator, made once per process."""

from __future__ import annotations

from service.plugins.api import DestinationContext
from service.runs.context import RunSettings
from tests.runs.conftest import World


async def test_the_run_context_and_the_coordinator_are_made_once_from_the_parts(
    world: World,
) -> None:
    services = world.services
    ctx = services.run_context

    assert services.runs is services.runs
    assert ctx is services.run_context
    assert ctx.requests is services.runs
    assert (ctx.store, ctx.events, ctx.queue) == (services.store, services.events, services.queue)
    assert ctx.settings == RunSettings.of(services.settings)
    assert ctx.find_destination("memory") is world.destination
    assert ctx.find_destination("nowhere") is None


async def test_the_run_context_opens_a_connections_destination_context(world: World) -> None:
    class Reporter:
        async def waiting(self, reason: str, until: object = None) -> None:
            return None

        def cancelled(self) -> bool:
            return False

        async def destination_progress(self, processed: int, total: int) -> None:
            return None

    reporter = Reporter()
    opened = await world.services.run_context.open_destination(
        world.connection, {"listId": "L1"}, reporter
    )

    assert isinstance(opened, DestinationContext)
    assert opened.export_settings == {"listId": "L1"}
    assert opened.reporter is reporter
    assert opened.http is world.services.http
