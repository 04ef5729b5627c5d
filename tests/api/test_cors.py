"""Browser frontends on other origins (issue 10, item 22): ``SEGPORT_CORS_ORIGINS``.

The app is served by uvicorn and asked over real HTTP what a browser asks: the
preflight ``OPTIONS`` with ``Origin`` and ``Access-Control-Request-*``, then the
request itself with its ``Origin``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest
import uvicorn

from service.access.auth import mint_token
from service.app import create_app
from service.core import open_services
from service.domain import Role
from service.settings import Settings
from tests.api import destination_fixture
from tests.support.settings import make_settings

UI = "https://ui.example"
OTHER = "https://evil.example"

Serve = Callable[..., AbstractAsyncContextManager[tuple[str, Settings]]]


@pytest.fixture
def serve(sqlite_url: str) -> Serve:
    @asynccontextmanager
    async def served(**overrides: object) -> AsyncIterator[tuple[str, Settings]]:
        settings = make_settings(sqlite_url, **overrides)
        async with open_services(
            settings, extra_plugins=[destination_fixture], load_entry_points=False
        ) as services:
            config = uvicorn.Config(
                create_app(services), host="127.0.0.1", port=0, log_level="warning"
            )
            server = uvicorn.Server(config)
            task = asyncio.create_task(server.serve())
            try:
                while not server.started:
                    assert not task.done(), "the server did not start"
                    await asyncio.sleep(0.01)
                port = server.servers[0].sockets[0].getsockname()[1]
                yield f"http://127.0.0.1:{port}", settings
            finally:
                server.should_exit = True
                await task

    return served


async def preflight(base_url: str, origin: str) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.options(
            f"{base_url}/graphql",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )


async def query_from(base_url: str, settings: Settings, origin: str) -> httpx.Response:
    token = mint_token(settings, "viewer-user", [Role.VIEWER])
    async with httpx.AsyncClient() as http:
        return await http.post(
            f"{base_url}/graphql",
            json={"query": "{ viewer { sub } }"},
            headers={"Origin": origin, "Authorization": f"Bearer {token}"},
        )


async def test_a_listed_origin_passes_the_preflight_and_reads_the_answer(serve: Serve) -> None:
    async with serve(cors_origins=f"{UI}, http://localhost:3000") as (base_url, settings):
        allowed = await preflight(base_url, UI)
        answer = await query_from(base_url, settings, UI)

    assert allowed.status_code == 200, allowed.text
    assert allowed.headers["access-control-allow-origin"] == UI
    assert "POST" in allowed.headers["access-control-allow-methods"]
    requested = {
        h.strip().lower() for h in allowed.headers["access-control-allow-headers"].split(",")
    }
    assert {"authorization", "content-type"} <= requested
    assert answer.status_code == 200
    assert answer.json()["data"]["viewer"]["sub"] == "viewer-user"
    assert answer.headers["access-control-allow-origin"] == UI
    assert "x-request-id" in answer.headers["access-control-expose-headers"].lower()


async def test_an_origin_not_listed_gets_no_cors_headers(serve: Serve) -> None:
    async with serve(cors_origins=UI) as (base_url, settings):
        refused = await preflight(base_url, OTHER)
        answer = await query_from(base_url, settings, OTHER)

    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    assert "access-control-allow-origin" not in answer.headers


async def test_without_the_setting_nothing_answers_cors(serve: Serve) -> None:
    async with serve() as (base_url, settings):
        assert settings.cors_origins == []
        refused = await preflight(base_url, UI)
        answer = await query_from(base_url, settings, UI)

    assert refused.status_code == 405
    assert not [h for h in refused.headers if h.startswith("access-control-")]
    assert not [h for h in answer.headers if h.startswith("access-control-")]


def test_an_entry_that_is_not_an_origin_is_refused_naming_the_variable() -> None:
    with pytest.raises(ValueError, match="SEGPORT_CORS_ORIGINS entry 'ui.example/app'"):
        Settings(cors_origins="https://ui.example, ui.example/app")


def test_the_variable_is_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGPORT_CORS_ORIGINS", "https://ui.example/ , http://localhost:3000,,")
    assert Settings().cors_origins == ["https://ui.example", "http://localhost:3000"]
