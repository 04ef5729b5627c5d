"""``segport run --follow``, the real command in its own process, against a served API.

Embedded mode behind a real uvicorn server (SQLite, in-process jobs), the real
Constant Contact plugin against its fake: the fake first answers "too many queued
activities" (the run waits, saying why), then takes several polls to finish each
import, so the run spends a while confirming after everything is sent. The
command's output is not a terminal, so it is the line it prints for each phase
and its summary.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from segport_constant_contact import ConstantContact
from segport_constant_contact.fake import RunningFake, run_fake

from service.access.auth import mint_token
from service.api.ids import to_global_id
from service.core import Services, open_services
from service.domain import Role
from service.runs.embedded import in_process_runs
from tests.runs.cc_world import ConstantContactPlugin, cc_profiles, fast_cc_settings, seed_cc_export
from tests.support.served import served
from tests.support.settings import TEST_ENCRYPTION_KEY, TEST_JWT_SECRET, make_settings

SEGPORT = Path(sys.executable).parent / "segport"
VALID = 200
RATE = 8
"""Requests per second: slow enough that the run is seen sending for a while."""
PHASE_LINE = re.compile(r"^(\d+):(\d\d):(\d\d) (\w+)(?:: (.*?))? \((\d+)%; (.*)\)$")


@dataclass
class Api:
    services: Services
    fake: RunningFake
    url: str


@pytest.fixture
def fake() -> Iterator[RunningFake]:
    with run_fake(seed=17, requests_per_second=RATE) as running:
        yield running


@pytest.fixture
async def api(tmp_path: Path, fake: RunningFake) -> AsyncIterator[Api]:
    destination = ConstantContact(fast_cc_settings(fake))
    destination.limits = replace(destination.limits, batch_max_records=25, requests_per_second=RATE)
    settings = make_settings(f"sqlite:///{tmp_path / 'api.db'}", run_read_batch_size=20)
    async with (
        open_services(
            settings, extra_plugins=[ConstantContactPlugin(destination)], load_entry_points=False
        ) as services,
        in_process_runs(services.run_context),
        served(services) as url,
    ):
        yield Api(services, fake, url)


async def segport_run_follow(api: Api, export_id: str, cwd: Path) -> tuple[int, str]:
    """``segport run EXPORT --follow --url URL`` with an admin token: exit code and stdout."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("SEGPORT_")}
    env |= {
        "SEGPORT_TOKEN": mint_token(api.services.settings, "alice", [Role.ADMIN]),
        "SEGPORT_DATABASE_URL": f"sqlite:///{cwd / 'unused.db'}",
        "SEGPORT_JWT_SECRET": TEST_JWT_SECRET,
        "SEGPORT_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
        "COLUMNS": "200",
    }
    process = await asyncio.create_subprocess_exec(
        str(SEGPORT), "run", export_id, "--follow", "--url", api.url,
        cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_follow_shows_phases_the_wait_and_its_reason_a_running_clock_and_a_summary(
    api: Api, tmp_path: Path
) -> None:
    export = await seed_cc_export(api.services, api.fake, cc_profiles(VALID))
    api.fake.state.configure(queued_activities_429s=1, polls_to_complete=6)

    code, out = await segport_run_follow(api, to_global_id("Export", export.id), tmp_path)

    assert code == 0, out
    phases = [m for line in out.splitlines() if (m := PHASE_LINE.match(line))]
    names = [m[4] for m in phases]
    assert {"sending", "waiting", "confirming"} <= set(names), out
    assert names.index("sending") < names.index("confirming"), out
    # The wait says why: the run's message, the destination's words.
    waits = [m[5] for m in phases if m[4] == "waiting"]
    assert any("queued activities" in (why or "") for why in waits), out
    # Not 100 % while the destination is still confirming.
    assert all(int(m[6]) < 100 for m in phases if m[4] != "succeeded"), out
    assert [m for m in phases if m[4] == "succeeded"][-1][6] == "100", out
    # The clock runs: it never goes back, and it moved on while the run went.
    seconds = [int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3]) for m in phases]
    assert seconds == sorted(seconds), out
    assert seconds[-1] > seconds[0], out
    summary = out[out.index("SUCCEEDED after") :]
    assert f"{VALID} contacts sent" in summary
    assert "2 skipped as invalid" in summary
    assert "1 skipped as duplicates" in summary
    assert f"{VALID} accepted by the destination" in summary
    assert "acceptedByDestination" not in out
    # The records left out: a few of them, and how to read them all.
    assert "Some of the records or values left out" in summary
    assert re.search(r"x00000[23]\s+email\s+\w+: ", summary), summary
    assert "errors(first: 100)" in summary
