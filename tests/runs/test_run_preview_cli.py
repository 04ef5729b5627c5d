"""``segport run EXPORT_ID --preview``: the real command in its own process, against a served
API (embedded mode, the real Constant Contact plugin and its fake). It prints what a run
would do, sends nothing and starts no run; refused exports exit 2 saying why."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
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


@dataclass
class Api:
    services: Services
    fake: RunningFake
    url: str


@pytest.fixture
def fake() -> Iterator[RunningFake]:
    with run_fake(seed=5) as running:
        yield running


@pytest.fixture
async def api(tmp_path: Path, fake: RunningFake) -> AsyncIterator[Api]:
    settings = make_settings(f"sqlite:///{tmp_path / 'api.db'}")
    destination = ConstantContact(fast_cc_settings(fake))
    async with (
        open_services(
            settings, extra_plugins=[ConstantContactPlugin(destination)], load_entry_points=False
        ) as services,
        in_process_runs(services.run_context),
        served(services) as url,
    ):
        yield Api(services, fake, url)


async def segport_run(api: Api, cwd: Path, *arguments: str) -> tuple[int, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("SEGPORT_")}
    env |= {
        "SEGPORT_TOKEN": mint_token(api.services.settings, "alice", [Role.ADMIN]),
        "SEGPORT_DATABASE_URL": f"sqlite:///{cwd / 'unused.db'}",
        "SEGPORT_JWT_SECRET": TEST_JWT_SECRET,
        "SEGPORT_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
        "COLUMNS": "200",
    }
    process = await asyncio.create_subprocess_exec(
        str(SEGPORT), "run", *arguments, "--url", api.url,
        cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_preview_prints_the_numbers_and_the_first_records_and_sends_nothing(
    api: Api, tmp_path: Path
) -> None:
    export = await seed_cc_export(api.services, api.fake, cc_profiles(30))
    code, out = await segport_run(api, tmp_path, to_global_id("Export", export.id), "--preview")
    assert code == 0, out
    assert "A run now would (nothing was sent):" in out
    assert "30 to add (new to the destination)" in out
    assert " 2 to skip as invalid" in out
    assert " 1 to skip as duplicates" in out
    assert "The first 20 records it would send (profile: record):" in out
    assert 'p000000: {"email": "Contact0@Example.com", "first_name": "First0"' in out
    assert api.fake.state.requests_to("POST", "/v3/activities/contacts_json_import") == 0
    page = await api.services.store.list_runs(first=5, export_id=export.id)
    assert page.items == []


async def test_preview_of_an_export_that_cannot_run_exits_2_saying_why(
    api: Api, tmp_path: Path
) -> None:
    export = await seed_cc_export(api.services, api.fake, cc_profiles(3), connection_id=None)
    code, out = await segport_run(api, tmp_path, to_global_id("Export", export.id), "--preview")
    assert code == 2, out
    assert "Preview refused:" in out
    assert "(EXPORT_DETACHED)" in out


async def test_preview_and_follow_together_are_refused(api: Api, tmp_path: Path) -> None:
    code, out = await segport_run(api, tmp_path, "RXhwb3J0OjE=", "--preview", "--follow")
    assert code == 2, out
    assert "--preview" in out
