"""The real ASGI app of a test's services, served by uvicorn on a free port, and a small
GraphQL-over-HTTP caller for it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import uvicorn
from starlette.types import ASGIApp

from service.access.auth import mint_token
from service.api.socket_protocol import server_config
from service.app import create_app
from service.core import Services
from service.domain import Role


@asynccontextmanager
async def serving_app(
    app: ASGIApp, port: int = 0, ws: str | None = None
) -> AsyncIterator[uvicorn.Server]:
    """``app`` behind uvicorn as ``segport serve`` serves it (``server_config``), on a free
    loopback port (or ``port``), in this event loop; yields the running server. ``ws``:
    one of uvicorn's own websocket protocols instead of segport's."""
    config = server_config(app, host="127.0.0.1", port=port, log_level="warning")
    if ws is not None:
        config.ws = ws
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()  # raises why it did not start
                raise RuntimeError("the server stopped before it started")
            await asyncio.sleep(0.01)
        yield server
    finally:
        server.should_exit = True
        await task


def port_of(server: uvicorn.Server) -> int:
    """The port a server from :func:`serving_app` listens on."""
    return int(server.servers[0].sockets[0].getsockname()[1])


@asynccontextmanager
async def serving(services: Services, port: int = 0) -> AsyncIterator[int]:
    """The app of ``services`` behind uvicorn on a free loopback port (or ``port``, when the
    services' public URL must name it beforehand), in this event loop (the services belong
    to it); yields the port. The one way tests serve the app."""
    async with serving_app(create_app(services), port) as server:
        yield port_of(server)


@asynccontextmanager
async def served(services: Services) -> AsyncIterator[str]:
    """Serve ``services`` over HTTP while open; yields the GraphQL endpoint's URL."""
    async with serving(services) as port:
        yield f"http://127.0.0.1:{port}/graphql"


async def graphql_text(
    services: Services, url: str, query: str, variables: dict[str, Any], role: Role
) -> str:
    """The raw body of a GraphQL request made with a token of ``role`` (HTTP 200 expected)."""
    token = mint_token(services.settings, "alice", [role])
    async with httpx.AsyncClient(timeout=30.0) as http:
        response = await http.post(
            url,
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 200, response.text
    return response.text
