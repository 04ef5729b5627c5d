"""E-mail addresses never leak into what a run reports, whatever shape they come in.

Whole runs in embedded mode with real parts: a SQLite file, the real app served by
uvicorn and queried over HTTP and over its websocket, JSON logs captured from the
start. Two destinations: the real Constant Contact plugin against its fake (its own
validation quotes the refused value, stripped, escaped or cut to 60 characters), and
the in-test destination refusing valid-looking addresses in words that quote them
(per record, in the receipt's samples, and in the error that fails a run).

The leaky values: surrounding spaces, a tab, a NUL, 70 characters, and a valid-looking
address the destination refuses. Afterwards no GraphQL answer (runs' errors and
messages, as admin and as viewer), no log line and no byte of the database (once the
profiles themselves are gone) holds any part of them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from segport_constant_contact import ConstantContact
from segport_constant_contact.fake import RunningFake, run_fake

from service.access.auth import mint_token
from service.api.ids import to_global_id
from service.core import Services, open_services
from service.domain import Export, ExportRunStatus, FieldMapping, Profile, Role
from service.observability.logging import configure_logging
from service.plugins import DestinationError, DestinationLimits
from service.runs import client
from service.runs.embedded import in_process_runs
from tests.runs.cc_world import ConstantContactPlugin, fast_cc_settings, seed_cc_export
from tests.runs.memory_destination import Behaviour, MemoryDestination, MemoryPlugin
from tests.support.logstream import open_log_stream
from tests.support.records import make_plain_connection, make_plain_export
from tests.support.served import graphql_text, served
from tests.support.settings import make_settings

SEVENTY = "seventy.chars." + "k" * 40 + "@seventy.example"
LEAKY = {
    "p01": " john.smith@victim-example ",
    "p02": "tab\tjane@x.example",
    "p03": "nul\x00bob@x.example",
    "p04": SEVENTY,
    "p05": "valid.looking@blocked-victim.example",
}
"""Profile id to the e-mail attribute it holds."""
NEEDLES = [
    "john.smith",
    "victim-example",
    "jane@",
    "bob@",
    "seventy.chars",
    "kkkkkkkk",
    "valid.looking",
    "blocked-victim",
]
"""Parts of the values above, none of which may appear anywhere a run reports to."""

RUN_DETAILS = """
query($id: ID!) {
  node(id: $id) {
    ... on ExportRun {
      status message
      errors { profileId field code message }
      export { runs(first: 10) { edges { node { message errors { code message } } } } }
    }
  }
}
"""


def leaky_profiles() -> list[Profile]:
    profiles = [
        Profile(id=pid, attributes={"EmailAddress": email, "FirstName": "Pat"})
        for pid, email in LEAKY.items()
    ]
    profiles += [
        Profile(id=f"q{i:02d}", attributes={"EmailAddress": f"fine{i}@example.com"})
        for i in range(5)
    ]
    return profiles


def assert_clean(text: str, where: str) -> None:
    found = [needle for needle in NEEDLES if needle in text]
    assert not found, f"{found} in {where}: {text[:2000]}"


@pytest.fixture
def fake() -> Iterator[RunningFake]:
    with run_fake(seed=7, requests_per_second=50) as running:
        yield running


async def memory_export(services: Services, segment_ids: list[str], name: str) -> Export:
    """An export of the segments to the in-test destination, named ``name``."""
    connection = make_plain_connection("memory", f"Memory {name}")
    await services.store.save_connection(connection)
    export = make_plain_export(
        connection,
        segment_ids,
        [FieldMapping(source="EmailAddress", target="email")],
        display_name=name,
    )
    await services.store.save_export(export)
    return export


def token(services: Services, role: Role) -> str:
    return mint_token(services.settings, "alice", [role])


async def run_to_end(services: Services, url: str, export: Export) -> tuple[str, list[str]]:
    """Run ``export`` over HTTP, following it over the websocket: its global id, and every
    state the subscription delivered (as JSON text)."""
    admin = token(services, Role.ADMIN)
    queued = await client.request_run(url, admin, to_global_id("Export", export.id))
    seen = [json.dumps(state) async for state in client.follow_run(url, admin, queued["id"])]
    return str(queued["id"]), seen


async def test_no_part_of_a_refused_address_reaches_graphql_the_logs_or_the_database(
    tmp_path: Path, fake: RunningFake
) -> None:
    database = tmp_path / "leaks.db"
    settings = make_settings(
        f"sqlite:///{database}",
        run_read_batch_size=4,
        log_format="json",
        log_level="DEBUG",
    )
    cc = ConstantContact(fast_cc_settings(fake))
    cc.limits = replace(cc.limits, batch_max_records=4, requests_per_second=50)
    behaviour = Behaviour(refuse_emails_with="victim")
    memory = MemoryDestination(
        behaviour, DestinationLimits(batch_max_records=4, batch_max_bytes=4000)
    )
    answers: list[str] = []
    with open_log_stream() as logs:
        configure_logging(settings, stream=logs)
        async with (
            open_services(
                settings,
                extra_plugins=[ConstantContactPlugin(cc), MemoryPlugin(memory)],
                load_entry_points=False,
            ) as services,
            in_process_runs(services.run_context),
            served(services) as url,
        ):
            cc_export = await seed_cc_export(services, fake, leaky_profiles())
            refused = await memory_export(services, cc_export.segment_ids, "Refusing")
            failing = await memory_export(services, cc_export.segment_ids, "Failing")

            runs: dict[str, str] = {}
            for export in (cc_export, refused):
                runs[export.display_name], seen = await run_to_end(services, url, export)
                answers += seen
            behaviour.fail_upload_number = behaviour.uploads + 1
            behaviour.fail_with = DestinationError(
                f"Import stopped: {LEAKY['p05']} and {LEAKY['p01'].strip()} are blocked"
            )
            runs["Failing"], seen = await run_to_end(services, url, failing)
            answers += seen

            details: dict[str, dict[str, Any]] = {}
            for name, run_id in runs.items():
                for role in (Role.ADMIN, Role.VIEWER):
                    text = await graphql_text(services, url, RUN_DETAILS, {"id": run_id}, role)
                    answers.append(text)
                    details[name] = json.loads(text)["data"]["node"]
        log_text = logs.getvalue()

    # The runs did refuse the leaky values, and say so: by profile, field, code, reason.
    cc_errors = {(e["profileId"], e["code"]) for e in details[cc_export.display_name]["errors"]}
    assert {("p01", "EMAIL_INVALID"), ("p02", "EMAIL_INVALID"), ("p04", "TOO_LONG")} <= cc_errors
    refused_run = details["Refusing"]
    assert refused_run["status"] == "SUCCEEDED"
    assert {e["code"] for e in refused_run["errors"]} == {"BLOCKED", "DESTINATION_REJECTED"}
    assert {e["profileId"] for e in refused_run["errors"] if e["code"] == "BLOCKED"} == {
        "p01",
        "p05",
    }
    failed = details["Failing"]
    assert failed["status"] == str(ExportRunStatus.FAILED)
    assert failed["message"].startswith("Import stopped: <redacted> and <redacted> are blocked")

    for number, answer in enumerate(answers):
        assert_clean(answer, f"GraphQL answer {number}")
    assert_clean(log_text, "the logs")
    # The profiles hold the addresses by design; nothing else in the database may.
    with closing(sqlite3.connect(database, isolation_level=None)) as db:
        db.execute("DELETE FROM profiles")
        db.execute("VACUUM")  # rewrites the file: no freed page keeps old bytes
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for path in database.parent.glob(database.name + "*"):
        assert_clean(path.read_bytes().decode("latin-1"), f"the database file {path.name}")
