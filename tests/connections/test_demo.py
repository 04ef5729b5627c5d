"""``segport demo``: the real command started in its own process, queried over GraphQL,
its printed mutation run to the end, stopped, restarted."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from segport_constant_contact.demo import DEMO_LIST_ID

from service.demo import SEGMENTS, demo_profiles
from service.plugins import DEMO_PROFILE_ATTRIBUTES
from tests.support.net import free_port

STARTUP_LINES = 200
"""Most output lines read while waiting for the banner (it ends with the mutation)."""
RUN_WAIT_SECONDS = 120
"""Bound on waiting for the demo run to end, so a hung run fails instead of hanging CI."""
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED", "SKIPPED"}


def segport_command() -> str:
    """The ``segport`` console script of the environment running the tests."""
    script = Path(sys.executable).with_name("segport")
    assert script.exists(), f"no segport console script next to {sys.executable}: pip install -e ."
    return str(script)


@dataclass(frozen=True)
class RunningDemo:
    base_url: str
    token: str
    mutation: str
    """The runExport mutation exactly as the banner prints it."""
    fake_url: str


@asynccontextmanager
async def demo_process(data_dir: Path, cwd: Path) -> AsyncIterator[RunningDemo]:
    """Run ``segport demo --data-dir data_dir`` in ``cwd`` until the block ends (SIGTERM)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGPORT_")}
    process = await asyncio.create_subprocess_exec(
        segport_command(),
        "demo",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
        cwd=cwd,
    )
    assert process.stdout is not None
    printed: list[str] = []
    token = mutation = fake_url = ""
    try:
        for _ in range(STARTUP_LINES):
            line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
            assert line, "the demo ended before it was ready:\n" + "".join(printed)
            printed.append(line)
            if line.startswith("eyJ"):
                token = line.strip()
            if found := re.search(r"Fake Constant Contact: (\S+)", line):
                fake_url = found.group(1)
            if "runExport" in line:
                mutation = line.strip()
                break
        assert token, "".join(printed)
        assert fake_url, "".join(printed)
        yield RunningDemo(f"http://127.0.0.1:{port}", token, mutation, fake_url)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        rest = await asyncio.wait_for(process.stdout.read(), 30)
        code = await asyncio.wait_for(process.wait(), 30)
        assert code == 0, "".join(printed) + rest.decode()
        assert b"segport demo stopped." in rest


DEMO_QUERY = """
{
  exports(first: 10) {
    totalCount
    edges { node { id displayName settings
      connection { displayName status account exportUser }
      segments { name } } }
  }
  segments(first: 10) { totalCount }
}
"""


async def query(
    base_url: str, token: str, document: str = DEMO_QUERY, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        answer = await client.post(
            f"{base_url}/graphql",
            json={"query": document, "variables": variables or {}},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


async def test_demo_serves_a_connected_demo_export_and_restarts_without_duplicates(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "demo-data"
    async with demo_process(data_dir, tmp_path) as demo:
        first = await query(demo.base_url, demo.token)

    exports = first["exports"]
    assert isinstance(exports, dict)
    # One demo export per installed plugin's fixture: Constant Contact's and Mailchimp's.
    assert exports["totalCount"] == 2
    by_connection = {e["node"]["connection"]["displayName"]: e["node"] for e in exports["edges"]}
    assert by_connection["Demo Mailchimp"]["connection"]["status"] == "CONNECTED"
    assert by_connection["Demo Mailchimp"]["settings"]["statusIfNew"] == "subscribed"
    export = by_connection["Demo Constant Contact"]
    assert export["settings"] == {"listId": "07936f78-662a-11eb-af0a-fa163e56c9b0"}
    assert export["connection"] == {
        "displayName": "Demo Constant Contact",
        "status": "CONNECTED",
        "account": "Fake Outfitters",
        "exportUser": "demo-admin",
    }
    assert export["segments"] == [{"name": "Newsletter subscribers"}]
    assert first["segments"] == {"totalCount": 3}
    assert f'exportId: "{export["id"]}"' in demo.mutation
    assert (data_dir / "segport.db").exists()

    # A second start on the same data directory reuses everything, and connects again
    # (the new fake knows none of the old tokens).
    async with demo_process(data_dir, tmp_path) as demo:
        second = await query(demo.base_url, demo.token)
    assert second == first


def test_demo_profiles_have_the_attributes_demo_fixtures_map() -> None:
    for profile in demo_profiles(3):
        assert tuple(profile.attributes) == DEMO_PROFILE_ATTRIBUTES


RUN = """
query($id: ID!) {
  node(id: $id) {
    ... on ExportRun {
      status message progress
      counts { profilesRead contactsSent skippedInvalid skippedDuplicate
               acceptedByDestination rejectedByDestination cannotAddToList }
    }
  }
}"""


def expected_contacts() -> set[str]:
    """The e-mails the demo export should land in the list: its segment's members with a
    well-formed e-mail, each once (the demo data has a few of each problem)."""
    segment_id = SEGMENTS[0][0]
    emails = [
        str(p.attributes["EmailAddress"]).lower()
        for p in demo_profiles()
        if segment_id in p.segment_ids
    ]
    return {e for e in emails if "@" in e}


async def run_to_the_end(demo: RunningDemo, run_id: str) -> dict[str, Any]:
    async with asyncio.timeout(RUN_WAIT_SECONDS):
        while True:
            run: dict[str, Any] = (await query(demo.base_url, demo.token, RUN, {"id": run_id}))[
                "node"
            ]
            if run["status"] in TERMINAL:
                return run
            await asyncio.sleep(0.2)


async def test_the_printed_mutation_runs_the_demo_export_into_the_fakes_list(
    tmp_path: Path,
) -> None:
    cwd = tmp_path / "where-segport-demo-is-typed"
    cwd.mkdir()
    data_dir = tmp_path / "demo-data"
    expected = expected_contacts()

    async with demo_process(data_dir, cwd) as demo:
        started = (await query(demo.base_url, demo.token, demo.mutation))["runExport"]
        assert started["userErrors"] == [], started
        assert started["exportRun"]["status"] == "QUEUED"
        run = await run_to_the_end(demo, started["exportRun"]["id"])
        async with httpx.AsyncClient(base_url=demo.fake_url) as fake:
            stats = (await fake.get("/__fake__/stats")).json()
            access = (await fake.post("/__fake__/tokens")).json()["access_token"]
            one = sorted(expected)[0]
            found = await fake.get(
                "/v3/contacts",
                params={"email": one},
                headers={"Authorization": f"Bearer {access}"},
            )

    assert run["status"] == "SUCCEEDED", run
    assert run["message"] is None
    assert run["progress"] == 1.0
    counts = run["counts"]
    assert counts["contactsSent"] == len(expected)
    assert counts["acceptedByDestination"] == len(expected)
    assert counts["skippedInvalid"] > 0
    assert counts["skippedDuplicate"] > 0
    assert counts["profilesRead"] == (
        counts["contactsSent"] + counts["skippedInvalid"] + counts["skippedDuplicate"]
    )
    assert (counts["rejectedByDestination"], counts["cannotAddToList"]) == (0, 0)
    assert stats["lists"][DEMO_LIST_ID]["members"] == len(expected)
    [contact] = found.json()["contacts"]
    assert DEMO_LIST_ID in contact["list_memberships"]
    # The demo keeps everything in its data directory, nothing where it was started.
    assert list(cwd.iterdir()) == []
    assert (data_dir / ".segport-secrets").is_dir()
    assert (data_dir / "segport.db").exists()
