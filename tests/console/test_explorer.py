"""The console's files as served, the developer explorer that replaced CDN GraphiQL, and
SEGPORT_GRAPHIQL turning the explorer off."""

from __future__ import annotations

import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import httpx
import pytest
from playwright.async_api import expect

from service.app import CONSOLE_DIRECTORY, create_app
from service.core import open_services
from service.domain import Role
from tests.console.conftest import ROOT, Console, screenshot
from tests.console.test_console import NewPage
from tests.support.settings import make_settings

BROWSER = {"Accept": "text/html,application/xhtml+xml"}


def console_files() -> list[Path]:
    return sorted(p for p in CONSOLE_DIRECTORY.iterdir() if p.is_file())


def test_every_console_file_is_package_data_of_the_wheel() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["service"]
    for path in console_files():
        relative = f"console/{path.name}"
        assert any(fnmatch(relative, pattern) for pattern in patterns), relative


def test_the_console_loads_nothing_from_elsewhere() -> None:
    # Every script, stylesheet and module import names a file of the console itself.
    for path in console_files():
        text = path.read_text()
        assert not re.search(r"https?://|//cdn|unpkg|jsdelivr", text), path.name
        for target in re.findall(r'(?:from|import|src=|href=)\s*"(\./[^"]+|/console/[^"]+)"', text):
            assert (CONSOLE_DIRECTORY / Path(target).name).is_file(), (path.name, target)


async def test_console_and_explorer_are_served_with_a_policy_that_allows_only_this_origin(
    console: Console,
) -> None:
    async with httpx.AsyncClient(base_url=console.base_url) as http:
        bare = await http.get("/console")
        page = await http.get("/console/")
        module = await http.get("/console/app.js")
        explorer = await http.get("/graphql", headers=BROWSER)
    assert bare.status_code in (307, 308)
    assert bare.headers["location"].endswith("/console/")
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert module.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert explorer.status_code == 200
    assert "GraphQL explorer" in explorer.text
    assert "default-src 'self'" in explorer.headers["content-security-policy"]


async def test_the_explorer_runs_a_query_with_the_pasted_token(
    console: Console, new_page: NewPage
) -> None:
    page = await new_page()
    await page.goto(f"{console.base_url}/graphql")
    await page.get_by_label("Bearer token").fill(console.token(Role.VIEWER, "dev"))
    await page.get_by_label("Operation").fill("query { viewer { sub roles } }")
    await page.get_by_role("button", name="Run").click()
    result = page.locator("#result")
    await expect(result).to_contain_text('"sub": "dev"')
    await expect(result).to_contain_text('"viewer"')
    await screenshot(page, "explorer")


async def test_segport_graphiql_false_turns_the_explorer_off_and_keeps_the_console(
    tmp_path: Path,
) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'segport.db'}", graphiql=False)
    async with open_services(settings) as services:
        transport = httpx.ASGITransport(app=create_app(services))
        async with httpx.AsyncClient(transport=transport, base_url="http://segport") as http:
            explorer = await http.get("/graphql", headers=BROWSER)
            explorer_file = await http.get("/console/explorer.html")
            explorer_module = await http.get("/console/explorer.js")
            page = await http.get("/console/")
            api = await http.post("/graphql", json={"query": "{ viewer { sub } }"})
    assert explorer.status_code == 404
    assert explorer_file.status_code == 404
    assert explorer_module.status_code == 404
    assert page.status_code == 200
    assert api.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_segport_graphiql_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGPORT_GRAPHIQL", "false")
    assert make_settings("sqlite:///unused.db").graphiql is False
