"""What a user sees of a Constant Contact run, over the real GraphQL endpoint (HTTP and the
``exportRun`` subscription) in embedded mode, against the fake: field warnings with exact
counts, an import that keeps failing, a daily-quota pause that a later run reports and an
admin lifts, and progress that moves while Constant Contact processes."""

from __future__ import annotations

import asyncio
import io
import json
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from segport_constant_contact import ConstantContact
from segport_constant_contact.fake import RunningFake, run_fake

from service.access.auth import mint_token
from service.api.ids import to_global_id
from service.core import Services, open_services
from service.domain import FieldMapping, Profile, Role
from service.runs import client
from service.runs.embedded import in_process_runs
from service.runs.run_view import RUN_ERRORS
from tests.runs.cc_world import (
    MAPPING,
    NEWSLETTER_LIST,
    ConstantContactPlugin,
    cc_profiles,
    fast_cc_settings,
    seed_cc_export,
)
from tests.support.served import graphql_text, served
from tests.support.settings import make_settings


@dataclass
class Webhook:
    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            hook.received.append(json.loads(self.rfile.read(length)))
            hook.arrived.set()
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    hook.url = f"http://127.0.0.1:{server.server_port}/hooks/segport"
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Live:
    services: Services
    fake: RunningFake
    url: str

    def token(self, role: Role = Role.ADMIN) -> str:
        return mint_token(self.services.settings, "alice", [role])

    async def graphql(
        self, query: str, variables: dict[str, Any] | None = None, role: Role = Role.ADMIN
    ) -> dict[str, Any]:
        text = await graphql_text(self.services, self.url, query, variables or {}, role)
        body: dict[str, Any] = json.loads(text)
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data


@pytest.fixture
def fake() -> Iterator[RunningFake]:
    with run_fake(seed=9, requests_per_second=50) as running:
        yield running


@pytest.fixture
async def live(tmp_path: Path, fake: RunningFake, webhook: Webhook) -> AsyncIterator[Live]:
    destination = ConstantContact(fast_cc_settings(fake))
    destination.limits = replace(destination.limits, batch_max_records=25, requests_per_second=50)
    settings = make_settings(
        f"sqlite:///{tmp_path / 'api.db'}", run_read_batch_size=20, notify_webhook_url=webhook.url
    )
    async with (
        open_services(
            settings, extra_plugins=[ConstantContactPlugin(destination)], load_entry_points=False
        ) as services,
        in_process_runs(services.run_context),
        served(services) as url,
    ):
        yield Live(services, fake, url)


RUN_STATE = """
query($id: ID!) {
  node(id: $id) {
    ... on ExportRun {
      status message progress
      counts { profilesRead contactsSent skippedInvalid skippedDuplicate acceptedByDestination
               rejectedByDestination cannotAddToList fieldWarnings }
    }
  }
}"""

PAUSES = "{ destinationPauses { destinationType displayName until reason } }"

LIFT = """
mutation($type: String!) {
  liftDestinationPause(input: {destinationType: $type}) {
    lifted { destinationType until reason }
    userErrors { field message code }
  }
}"""


async def run_to_the_end(live: Live, export_id: str) -> list[dict[str, Any]]:
    """Queue a run over HTTP and follow it over the websocket until it ends."""
    token = live.token()
    queued = await client.request_run(live.url, token, to_global_id("Export", export_id))
    return [state async for state in client.follow_run(live.url, token, queued["id"])]


async def test_field_warnings_are_counted_exactly_and_sampled_without_their_values(
    live: Live,
) -> None:
    long_phone = "+1 555 0100 " + "9" * 45  # 57 characters: more than a JSON import takes
    profiles = cc_profiles(40)
    for index in (3, 7, 11):
        profiles[index].attributes["Phone"] = long_phone
    profiles[20].attributes["Phone"] = "555-0100"  # fine: no warning
    profiles[5].attributes["FirstName"] = "N" * 60  # shortened to 50: a warning, still sent
    mapping = [*MAPPING, FieldMapping(source="Phone", target="phone")]
    export = await seed_cc_export(live.services, live.fake, profiles, field_mapping=mapping)

    states = await run_to_the_end(live, export.id)

    done = states[-1]
    assert done["status"] == "SUCCEEDED", done
    assert done["counts"]["contactsSent"] == 40
    assert done["counts"]["fieldWarnings"] == 4
    run_id = done["id"]
    errors = (await live.graphql(RUN_ERRORS, {"id": run_id, "first": 100}))["node"]["errors"]
    warned = sorted(
        (e["profileId"], e["field"], e["code"]) for e in errors if e["field"] not in (None, "email")
    )
    assert warned == [
        ("p000003", "phone", "TOO_LONG"),
        ("p000005", "first_name", "TRIMMED"),
        ("p000007", "phone", "TOO_LONG"),
        ("p000011", "phone", "TOO_LONG"),
    ]
    assert all(long_phone not in e["message"] and "9" * 20 not in e["message"] for e in errors)
    assert all("N" * 50 not in e["message"] for e in errors)
    # The contacts still went, without the value that could not be sent.
    assert "phone" not in live.fake.state.contacts["contact3@example.com"].fields
    assert live.fake.state.contacts["contact20@example.com"].fields["phone"] == "555-0100"
    assert len(live.fake.state.contacts["contact5@example.com"].fields["first_name"]) == 50


async def test_an_import_that_keeps_failing_fails_the_run_with_its_words_counts_and_a_webhook(
    live: Live, webhook: Webhook
) -> None:
    export = await seed_cc_export(live.services, live.fake, cc_profiles(10))
    # Only the imports fail (the run's contact export of the list, first, completes).
    live.fake.state.configure(failing_activities=3)
    output = io.StringIO()

    code = await client._run(
        live.url, live.token(), to_global_id("Export", export.id), True,
        Console(file=output, width=200),
    )  # fmt: skip

    assert code == client.EXIT_RUN_DID_NOT_SUCCEED, output.getvalue()
    assert "FAILED" in output.getvalue()
    assert live.fake.state.requests_to("POST", "/v3/activities/contacts_json_import") == 3
    [run_page] = (
        await live.graphql(
            "query($id: ID!) { node(id: $id) { ... on Export { runs(first: 1) "
            "{ edges { node { id } } } } } }",
            {"id": to_global_id("Export", export.id)},
        )
    )["node"]["runs"]["edges"]
    run = (await live.graphql(RUN_STATE, {"id": run_page["node"]["id"]}))["node"]
    assert run["status"] == "FAILED"
    assert "did not complete after 3 attempts" in run["message"]
    assert "The import failed before it completed" in run["message"]
    counts = run["counts"]
    assert counts["contactsSent"] == 10
    settled = (
        counts["acceptedByDestination"]
        + counts["rejectedByDestination"]
        + counts["cannotAddToList"]
    )
    assert settled == 10
    assert run["progress"] < 1.0
    assert await asyncio.to_thread(webhook.arrived.wait, 10)
    [notice] = webhook.received
    assert notice["status"] == "FAILED"
    assert notice["runId"] == run_page["node"]["id"]
    assert "did not complete after 3 attempts" in notice["text"]


async def states_until(
    states: AsyncIterator[dict[str, Any]], seen: list[dict[str, Any]], message_part: str
) -> dict[str, Any]:
    async for state in states:
        seen.append(state)
        if message_part in (state.get("message") or ""):
            return state
    raise AssertionError(f"the run ended without saying {message_part!r}: {seen[-1:]}")


async def test_a_quota_pause_is_said_on_every_waiting_run_shown_to_admins_and_lifted(
    live: Live,
) -> None:
    first = await seed_cc_export(live.services, live.fake, cc_profiles(30))
    second_profiles = [
        Profile(id=f"q{i:04d}", attributes={"EmailAddress": f"later{i}@example.com"})
        for i in range(12)
    ]
    second = await seed_cc_export(live.services, live.fake, second_profiles)
    # Constant Contact's daily quota runs out after the first run's first import.
    live.fake.state.configure(requests_per_day=1)
    token = live.token()
    run_one = await client.request_run(live.url, token, to_global_id("Export", first.id))
    one_states = client.follow_run(live.url, token, run_one["id"])
    seen_one: list[dict[str, Any]] = []

    waiting = await states_until(one_states, seen_one, "resumes at")

    message = waiting["message"]
    assert waiting["status"] == "RUNNING"
    assert message.startswith("Constant Contact's daily request quota is spent")
    assert message.count("resumes at") == 1
    assert message.count(":00:00 UTC") == 1, message  # the time is said once
    [pause] = (await live.graphql(PAUSES))["destinationPauses"]
    assert pause["destinationType"] == "constant_contact"
    assert pause["displayName"] == "Constant Contact"
    assert message.startswith(pause["reason"])
    assert pause["until"].endswith("00:00:00+00:00")

    # A picker does not wait hours for the pause: it says so at once.
    choices = await graphql_text(
        live.services, live.url,
        'query($c: ID!) { exportSettingChoices(connectionId: $c, setting: "listId") { id } }',
        {"c": to_global_id("Connection", first.connection_id or "")}, Role.ADMIN,
    )  # fmt: skip
    [refusal] = json.loads(choices)["errors"]
    assert refusal["extensions"]["code"] == "DESTINATION_UNAVAILABLE"
    assert "requests to Constant Contact are paused until" in refusal["message"]
    assert "ask an admin to lift the pause" in refusal["message"]

    # A run started while the pause is in force says so too, instead of waiting silently.
    run_two = await client.request_run(live.url, token, to_global_id("Export", second.id))
    two_states = client.follow_run(live.url, token, run_two["id"])
    seen_two: list[dict[str, Any]] = []
    later = await states_until(two_states, seen_two, "resumes at")
    assert later["message"] == message
    assert later["counts"]["acceptedByDestination"] == 0

    # The quota was raised: the admin lifts the pause, and both runs go on at once.
    live.fake.state.configure(requests_per_day=10_000)
    lifted = (await live.graphql(LIFT, {"type": "constant_contact"}))["liftDestinationPause"]
    assert lifted["userErrors"] == []
    assert lifted["lifted"]["reason"] == pause["reason"]
    end_one = [s async for s in one_states][-1]
    end_two = [s async for s in two_states][-1]
    assert (end_one["status"], end_two["status"]) == ("SUCCEEDED", "SUCCEEDED")
    assert end_one["counts"]["acceptedByDestination"] == 30
    assert end_two["counts"]["acceptedByDestination"] == 12
    assert (await live.graphql(PAUSES))["destinationPauses"] == []
    again = (await live.graphql(LIFT, {"type": "constant_contact"}))["liftDestinationPause"]
    assert [e["code"] for e in again["userErrors"]] == ["NOT_PAUSED"]
    assert live.fake.state.list_members(NEWSLETTER_LIST) >= {"later0@example.com"}


async def test_progress_moves_while_constant_contact_processes_an_import(live: Live) -> None:
    export = await seed_cc_export(live.services, live.fake, cc_profiles(20))
    live.fake.state.configure(polls_to_complete=8)

    states = await run_to_the_end(live, export.id)

    assert states[-1]["status"] == "SUCCEEDED"
    progress = [s["progress"] for s in states]
    assert progress == sorted(progress)
    # Between two checkpoints (the same counts), the progress moved: Constant Contact's
    # own items_completed_count, reported while it processed the import.
    moved = [
        (before["progress"], after["progress"])
        for before, after in zip(states, states[1:], strict=False)
        if after["status"] == "RUNNING"
        and before["counts"] == after["counts"]
        and after["progress"] > before["progress"]
    ]
    assert moved, progress
    assert all(p < 1.0 for s in states if s["status"] == "RUNNING" for p in [s["progress"]])
