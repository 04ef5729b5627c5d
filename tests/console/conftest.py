"""The console's browser tests: a real segport app with in-process runs (what ``segport
serve`` runs in embedded mode) on a free port, the fake Constant Contact, and headless
Chromium from the system packages driven by Playwright.

Chromium is Debian's ``chromium`` (``make test`` installs it when it is missing);
Playwright's own browser download is never used. Each test gets a fresh browser context,
so nothing (session storage included) leaks from one test to the next. Screenshots of each
screen go to ``$SEGPORT_TEST_OUTPUT/console`` (default ``test-output/console``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright
from segport_constant_contact.fake import RunningFake, run_fake

from service.access.auth import mint_token
from service.core import Services, open_services
from service.domain import Role
from service.runs.embedded import in_process_runs
from tests.support.net import free_port
from tests.support.served import serving
from tests.support.settings import make_settings

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("SEGPORT_TEST_OUTPUT", ROOT / "test-output")) / "console"
NEWSLETTER = "8a2b3c4d-0000-4000-8000-00000000a001"

# No background networking, updates or first-run pages: the browser talks only to
# the servers of the test, on the loopback interface.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--no-first-run",
    "--disable-features=Translate,MediaRouter,OptimizationHints",
]


def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail(
            "the console tests need Debian's chromium on PATH: `apt-get install -y chromium` "
            "(make test installs it when it is missing)"
        )
    return path


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium_path(),
            headless=True,
            args=CHROMIUM_ARGS,
            chromium_sandbox=False,
        )
        try:
            yield launched
        finally:
            await launched.close()


@dataclass
class Console:
    """The served app, its services, the fake, and how to act as a role."""

    base_url: str
    services: Services
    fake: RunningFake

    @property
    def url(self) -> str:
        return f"{self.base_url}/console/"

    def token(self, role: Role, sub: str = "alice", ttl: timedelta | None = None) -> str:
        return mint_token(self.services.settings, sub, [role], ttl or timedelta(hours=1))

    def sign_in_link(self, role: Role, sub: str = "alice", ttl: timedelta | None = None) -> str:
        return f"{self.url}#token={self.token(role, sub, ttl)}"

    async def gql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """An admin's GraphQL call over HTTP (test set-up goes through the API too)."""
        async with httpx.AsyncClient(timeout=30.0) as http:
            response = await http.post(
                f"{self.base_url}/graphql",
                json={"query": query, "variables": variables or {}},
                headers={"Authorization": f"Bearer {self.token(Role.ADMIN, 'setup-admin')}"},
            )
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data


@pytest.fixture
async def console(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Console]:
    with run_fake() as fake:
        for name, value in fake.environment().items():
            monkeypatch.setenv(name, value)
        port = free_port()
        settings = make_settings(
            f"sqlite:///{tmp_path / 'segport.db'}", public_url=f"http://127.0.0.1:{port}"
        )
        fake.state.configure(redirect_uris=[settings.oauth_redirect_uri])
        async with (
            open_services(settings) as services,
            in_process_runs(services.run_context),
            serving(services, port),
        ):
            yield Console(f"http://127.0.0.1:{port}", services, fake)


@pytest.fixture
async def new_page(browser: Browser) -> AsyncIterator[Callable[..., Awaitable[Page]]]:
    """Pages in fresh contexts (``width`` in CSS pixels); every page's console errors fail
    the test."""
    contexts = []
    problems: list[str] = []

    async def make(width: int = 1440, height: int = 900) -> Page:
        context = await browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        page = await context.new_page()
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.set_default_timeout(20_000)
        return page

    yield make
    for context in contexts:
        await context.close()
    assert not problems, problems


async def screenshot(page: Page, name: str) -> Path:
    """Save what the page shows now as ``<name>.png`` among the test output."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


async def sample_data(console: Console, profiles: int = 12) -> str:
    """A segment of ``profiles`` profiles with e-mail and names; returns the segment id."""
    segment = await console.gql(
        'mutation { upsertSegment(input: {name: "Spring buyers", description: "Bought in '
        'spring"}) { segment { id } userErrors { message } } }'
    )
    segment_id: str = segment["upsertSegment"]["segment"]["id"]
    rows = [
        {
            "id": f"p{n}",
            "attributes": {
                "EmailAddress": f"buyer{n}@example.com",
                "FirstName": f"Ann{n}",
                "LastName": "Buyer",
            },
            "segmentIds": [segment_id],
        }
        for n in range(profiles)
    ]
    loaded = await console.gql(
        "mutation($p: [ProfileInput!]!) { upsertProfiles(input: {profiles: $p}) "
        "{ upsertedCount userErrors { message } } }",
        {"p": rows},
    )
    assert loaded["upsertProfiles"]["upsertedCount"] == profiles
    return segment_id


async def connected_connection(console: Console, usable_by: str = "ADMINS_AND_CONTRIBUTORS") -> str:
    """A connection an admin made, authorized at the fake (over HTTP) and took as export user."""
    created = await console.gql(
        "mutation($usableBy: ConnectionUsableBy!) { createConnection(input: {destinationType: "
        '"constant_contact", displayName: "Marketing account", usableBy: $usableBy, '
        "acceptDataPrivacy: true}) { connection { id } userErrors { message } } }",
        {"usableBy": usable_by},
    )
    connection_id: str = created["createConnection"]["connection"]["id"]
    authorized = await console.gql(
        "mutation($id: ID!) { authorizeConnection(input: {connectionId: $id}) "
        "{ authorizationUrl userErrors { message } } }",
        {"id": connection_id},
    )
    async with httpx.AsyncClient(follow_redirects=True, timeout=30.0) as browser:
        await browser.get(authorized["authorizeConnection"]["authorizationUrl"])
    await console.gql(
        "mutation($id: ID!) { addExportUser(input: {connectionId: $id}) "
        "{ userErrors { message } } }",
        {"id": connection_id},
    )
    return connection_id
