"""Fixtures for the connection tests: the fake Constant Contact, our app (with its
``/oauth/callback``) served by a real uvicorn on a free port in the test's event loop,
and real Services on SQLite."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn
from segport_constant_contact.fake import RunningFake, run_fake
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from service.app import create_app
from service.core import Services, open_services
from service.domain import Connection, ConnectionStatus, ConnectionUsableBy, new_id, utcnow
from tests.support.settings import make_settings

TOKEN_PATH = "/oauth2/default/v1/token"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningFake]:
    """A fake Constant Contact; the installed plugin is pointed at it by environment."""
    with run_fake() as running:
        for name, value in running.environment().items():
            monkeypatch.setenv(name, value)
        yield running


@dataclass
class CallbackServer:
    """The segport app (``service.app.create_app``) behind uvicorn on a free port.

    The port must be known before the Services (their public URL builds the
    redirect URI), so the server starts with a placeholder and ``services``
    installs the real app.
    """

    url: str
    app: ASGIApp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


@pytest.fixture
async def callback_server() -> AsyncIterator[CallbackServer]:
    """Served by uvicorn in this event loop (it shares the test's Services, which
    belong to this loop)."""
    holder = CallbackServer("", Starlette())
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    holder.url = f"http://127.0.0.1:{port}"
    server = uvicorn.Server(
        uvicorn.Config(holder, log_level="warning", access_log=False, lifespan="off")
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        assert not task.done(), "the callback server did not start"
        await asyncio.sleep(0.01)
    yield holder
    server.should_exit = True
    await task
    sock.close()


@dataclass
class TokenRequests:
    """Requests our HTTP client sent to the fake's token endpoint (observed, not altered)."""

    seen: list[httpx.Request] = field(default_factory=list)

    async def __call__(self, request: httpx.Request) -> None:
        if request.url.path == TOKEN_PATH:
            self.seen.append(request)

    def grants(self, grant_type: str) -> int:
        return sum(1 for r in self.seen if f"grant_type={grant_type}".encode() in r.content)


@pytest.fixture
async def services(
    fake: RunningFake, callback_server: CallbackServer, tmp_path: Path
) -> AsyncIterator[Services]:
    settings = make_settings(f"sqlite:///{tmp_path / 'segport.db'}", public_url=callback_server.url)
    fake.state.configure(redirect_uris=[settings.oauth_redirect_uri])
    async with open_services(settings) as opened:
        callback_server.app = create_app(opened)
        yield opened


@pytest.fixture
def token_requests(services: Services) -> TokenRequests:
    observed = TokenRequests()
    services.http.event_hooks["request"].append(observed)
    return observed


@pytest.fixture
def db_path(services: Services) -> Path:
    return services.settings.sqlite_path


async def new_connection(
    services: Services, destination_type: str = "constant_contact", name: str = "Marketing CC"
) -> Connection:
    now = utcnow()
    connection = Connection(
        id=new_id(),
        display_name=name,
        destination_type=destination_type,
        usable_by=ConnectionUsableBy.ADMINS,
        status=ConnectionStatus.PENDING_AUTHORIZATION,
        created_by="alice",
        created_at=now,
        updated_at=now,
    )
    await services.store.save_connection(connection)
    return connection


def console_answer(response: httpx.Response, base_url: str) -> httpx.QueryParams:
    """What ``/oauth/callback`` told the browser: with SEGPORT_UI_URL unset, a redirect to
    the console (``<public URL>/console/``) with the outcome in its query."""
    assert response.status_code == 303, response.text
    target = httpx.URL(response.headers["location"])
    assert str(target).startswith(f"{base_url}/console/?"), target
    return target.params


async def approve_at_fake(authorization_url: str) -> tuple[str, str]:
    """The browser at the fake's authorize page: the (code, state) it redirects back with."""
    async with httpx.AsyncClient() as browser:
        answer = await browser.get(authorization_url)
    assert answer.status_code == 302, answer.text
    query = httpx.URL(answer.headers["location"]).params
    return query["code"], query["state"]
