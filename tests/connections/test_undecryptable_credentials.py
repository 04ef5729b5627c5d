"""A key rotation half done in embedded mode (issue 10, item 25).

The connection's credentials were sealed with the old key; the service restarts
with only the new one (``SEGPORT_ENCRYPTION_KEY=NEW`` before ``segport
rotate-keys`` ran). A run then fails saying which connection cannot be decrypted
and what to do (not "see the worker logs": there is no worker), the connection
shows NEEDS_REAUTHORIZATION with that message, and either way out works:
restoring the old key and rotating, or authorizing again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from segport_constant_contact import ConstantContact
from segport_constant_contact.fake import RunningFake, run_fake

from service.access.auth import mint_token
from service.app import create_app
from service.connections.keys import rotate_credentials
from service.core import Services, open_services
from service.domain import Role
from service.domain.ids import from_global_id, to_global_id
from service.runs.embedded import in_process_runs
from tests.runs.cc_world import ConstantContactPlugin, cc_profiles, fast_cc_settings, seed_cc_export
from tests.support.settings import TEST_ENCRYPTION_KEY, make_settings
from tests.support.workers import wait_for_end

OLD_KEY = TEST_ENCRYPTION_KEY
NEW_KEY = Fernet.generate_key().decode()

RUN_EXPORT = """
mutation($id: ID!) {
  runExport(input: {exportId: $id}) { exportRun { id status } userErrors { message code } }
}"""
RUN = """
query($id: ID!) { node(id: $id) { ... on ExportRun { status message } } }"""
CONNECTION = """
query($id: ID!) { node(id: $id) { ... on Connection { status statusMessage } } }"""


@pytest.fixture
def fake() -> Iterator[RunningFake]:
    with run_fake() as running:
        yield running


@asynccontextmanager
async def serving(database: Path, fake: RunningFake, keys: str) -> AsyncIterator[Services]:
    """Embedded services on ``database`` with SEGPORT_ENCRYPTION_KEY=``keys``, carrying runs."""
    settings = make_settings(f"sqlite:///{database}", encryption_key=keys)
    plugin = ConstantContactPlugin(ConstantContact(fast_cc_settings(fake)))
    async with (
        open_services(settings, extra_plugins=[plugin], load_entry_points=False) as services,
        in_process_runs(services.run_context),
    ):
        yield services


async def graphql(services: Services, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    token = mint_token(services.settings, "admin", [Role.ADMIN])
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://segport.test") as http:
        answer = await http.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}"},
        )
    body: dict[str, Any] = answer.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


async def run_export(services: Services, export_id: str) -> dict[str, Any]:
    """Run the export through the API to its end: the run as GraphQL shows it then."""
    started = (await graphql(services, RUN_EXPORT, {"id": to_global_id("Export", export_id)}))[
        "runExport"
    ]
    assert started["userErrors"] == [], started
    run_id = started["exportRun"]["id"]
    done = await wait_for_end(services, from_global_id(run_id)[1])
    assert done.status.is_terminal
    node: dict[str, Any] = (await graphql(services, RUN, {"id": run_id}))["node"]
    return node


async def connection_node(services: Services, connection_id: str) -> dict[str, Any]:
    data = await graphql(services, CONNECTION, {"id": to_global_id("Connection", connection_id)})
    node: dict[str, Any] = data["node"]
    return node


async def seeded(database: Path, fake: RunningFake) -> tuple[str, str]:
    """A connected export, its credentials sealed with the old key: (export id, connection id)."""
    async with serving(database, fake, OLD_KEY) as services:
        export = await seed_cc_export(services, fake, cc_profiles(5))
    assert export.connection_id is not None
    return export.id, export.connection_id


async def test_a_run_names_the_connection_whose_credentials_no_key_opens(
    tmp_path: Path, fake: RunningFake
) -> None:
    database = tmp_path / "segport.db"
    export_id, connection_id = await seeded(database, fake)

    async with serving(database, fake, NEW_KEY) as services:
        before = await connection_node(services, connection_id)
        failed = await run_export(services, export_id)
        after = await connection_node(services, connection_id)
        again = await run_export(services, export_id)

    assert before == {"status": "CONNECTED", "statusMessage": None}
    assert failed["status"] == "FAILED"
    message = failed["message"]
    assert message.startswith("Connection 'Marketing CC': ")
    assert "cannot be decrypted with the configured keys" in message
    assert "restore the previous key" in message
    assert "re-authorize" in message
    assert "worker logs" not in message
    assert after["status"] == "NEEDS_REAUTHORIZATION"
    assert "cannot be decrypted with the configured keys" in after["statusMessage"]
    assert "segport rotate-keys" in after["statusMessage"]
    assert again["status"] == "FAILED"
    assert "needs re-authorization" in again["message"]
    assert "cannot be decrypted" in again["message"]


async def test_restoring_the_old_key_and_rotating_makes_the_connection_usable_again(
    tmp_path: Path, fake: RunningFake
) -> None:
    database = tmp_path / "segport.db"
    export_id, connection_id = await seeded(database, fake)
    async with serving(database, fake, NEW_KEY) as services:
        assert (await run_export(services, export_id))["status"] == "FAILED"

    async with serving(database, fake, f"{NEW_KEY},{OLD_KEY}") as services:
        rotated = await rotate_credentials(services.store, services.cipher, services.locks)
    async with serving(database, fake, NEW_KEY) as services:
        connection = await connection_node(services, connection_id)
        run = await run_export(services, export_id)

    assert rotated == 1
    assert connection == {"status": "CONNECTED", "statusMessage": None}
    assert run["status"] == "SUCCEEDED", run


async def test_authorizing_again_replaces_the_credentials_no_key_opens(
    tmp_path: Path, fake: RunningFake
) -> None:
    database = tmp_path / "segport.db"
    export_id, connection_id = await seeded(database, fake)

    async with serving(database, fake, NEW_KEY) as services:
        assert (await run_export(services, export_id))["status"] == "FAILED"
        fake.state.configure(redirect_uris=[services.settings.oauth_redirect_uri])
        record = await services.store.get_connection(connection_id)
        assert record is not None
        async with httpx.AsyncClient() as browser:
            to_us = await browser.get(await services.oauth.start(record, "admin"))
        params = httpx.URL(to_us.headers["location"]).params
        await services.oauth.complete(params["state"], params["code"], "admin")
        connection = await connection_node(services, connection_id)
        run = await run_export(services, export_id)

    assert connection == {"status": "CONNECTED", "statusMessage": None}
    assert run["status"] == "SUCCEEDED", run
