"""Running exports over GraphQL, embedded mode: a real uvicorn server, real HTTP, a real
websocket (graphql-transport-ws), the real Constant Contact plugin against its fake."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console
from segport_constant_contact import ConstantContact
from segport_constant_contact.fake import RunningFake, run_fake

from service.access.auth import mint_token
from service.api.ids import to_global_id
from service.core import Services, open_services
from service.domain import Role
from service.runs import client
from service.runs.embedded import in_process_runs
from tests.runs.cc_world import (
    NEWSLETTER_LIST,
    ConstantContactPlugin,
    cc_profiles,
    expected_emails,
    fast_cc_settings,
    seed_cc_export,
)
from tests.support.served import serving
from tests.support.settings import make_settings


@dataclass
class Live:
    services: Services
    fake: RunningFake
    url: str

    def token(self, role: Role, sub: str = "alice") -> str:
        return mint_token(self.services.settings, sub, [role])

    async def graphql(self, query: str, variables: dict[str, Any], role: Role) -> dict[str, Any]:
        async with httpx.AsyncClient() as http:
            response = await http.post(
                self.url,
                json={"query": query, "variables": variables},
                headers={"Authorization": f"Bearer {self.token(role)}"},
            )
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
def fake() -> Iterator[RunningFake]:
    with run_fake(seed=5, requests_per_second=50) as running:
        yield running


@pytest.fixture
async def live(tmp_path: Path, fake: RunningFake) -> AsyncIterator[Live]:
    destination = ConstantContact(fast_cc_settings(fake))
    destination.limits = replace(destination.limits, batch_max_records=25, requests_per_second=50)
    settings = make_settings(f"sqlite:///{tmp_path / 'api.db'}", run_read_batch_size=20)
    async with (
        open_services(
            settings, extra_plugins=[ConstantContactPlugin(destination)], load_entry_points=False
        ) as services,
        in_process_runs(services.run_context),
        serving(services) as port,
    ):
        yield Live(services, fake, f"http://127.0.0.1:{port}/graphql")


RUN = client.RUN_EXPORT


async def test_a_run_requested_over_http_is_followed_to_success_over_a_websocket(
    live: Live,
) -> None:
    export = await seed_cc_export(live.services, live.fake, cc_profiles(150))
    export_gid = to_global_id("Export", export.id)
    token = live.token(Role.CONTRIBUTOR)

    queued = await client.request_run(live.url, token, export_gid)
    states = [s async for s in client.follow_run(live.url, token, queued["id"])]

    assert queued["status"] == "QUEUED"
    assert states[-1]["status"] == "SUCCEEDED", states[-1]
    assert {s["status"] for s in states} <= {"QUEUED", "RUNNING", "SUCCEEDED"}
    progress = [s["progress"] for s in states]
    assert progress == sorted(progress)
    assert progress[-1] == 1.0
    counts = states[-1]["counts"]
    assert counts["contactsSent"] == 150
    assert counts["skippedInvalid"] + counts["skippedDuplicate"] == 3
    assert counts["acceptedByDestination"] == 150
    assert live.fake.state.list_members(NEWSLETTER_LIST) == expected_emails(150)
    assert live.fake.state.contacts["contact42@example.com"].fields["last_name"] == "Last42"


async def test_segport_run_follow_exits_zero_when_the_run_succeeds(live: Live) -> None:
    export = await seed_cc_export(live.services, live.fake, cc_profiles(30))
    output = io.StringIO()

    code = await client._run(
        live.url,
        live.token(Role.ADMIN),
        to_global_id("Export", export.id),
        True,
        Console(file=output, width=120),
    )

    assert code == client.EXIT_OK
    assert "SUCCEEDED" in output.getvalue()


async def test_segport_run_exits_non_zero_when_the_run_is_refused(live: Live) -> None:
    output = io.StringIO()

    code = await client._run(
        live.url,
        live.token(Role.ADMIN),
        to_global_id("Export", "no-such-export"),
        True,
        Console(file=output, width=120),
    )

    assert code == client.EXIT_REFUSED
    assert "does not exist" in output.getvalue()


async def test_a_viewer_may_not_run_an_export(live: Live) -> None:
    export = await seed_cc_export(live.services, live.fake, cc_profiles(3))

    body = await live.graphql(RUN, {"exportId": to_global_id("Export", export.id)}, Role.VIEWER)

    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert live.fake.state.list_members(NEWSLETTER_LIST) == set()


async def test_a_second_run_while_one_is_active_is_a_user_error_naming_it(live: Live) -> None:
    export = await seed_cc_export(live.services, live.fake, cc_profiles(3))
    await live.services.queue.aclose()  # keep the first run queued
    gid = to_global_id("Export", export.id)

    first = await live.graphql(RUN, {"exportId": gid}, Role.ADMIN)
    second = await live.graphql(RUN, {"exportId": gid}, Role.ADMIN)

    first_run = first["data"]["runExport"]["exportRun"]["id"]
    errors = second["data"]["runExport"]["userErrors"]
    assert second["data"]["runExport"]["exportRun"] is None
    assert errors[0]["code"] == "ACTIVE_RUN_EXISTS"
    assert first_run in errors[0]["message"]


async def test_cancel_export_run_cancels_a_queued_run(live: Live) -> None:
    export = await seed_cc_export(live.services, live.fake, cc_profiles(3))
    await live.services.queue.aclose()
    queued = await live.graphql(RUN, {"exportId": to_global_id("Export", export.id)}, Role.ADMIN)
    run_id = queued["data"]["runExport"]["exportRun"]["id"]

    body = await live.graphql(
        "mutation($id: ID!) { cancelExportRun(input: {runId: $id}) "
        "{ exportRun { id status message } userErrors { code message } } }",
        {"id": run_id},
        Role.CONTRIBUTOR,
    )

    payload = body["data"]["cancelExportRun"]
    assert payload["userErrors"] == []
    assert payload["exportRun"]["status"] == "CANCELLED"


async def test_a_subscription_without_a_token_is_refused(live: Live) -> None:
    with pytest.raises(client.ClientError):
        async for _ in client.follow_run(live.url, "not-a-jwt", to_global_id("ExportRun", "x")):
            pass
