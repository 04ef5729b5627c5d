"""The real ASGI app of a test's services, served by uvicorn on a free port, and a small
GraphQL-over-HTTP caller for it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import uvicorn

from service.access.auth import mint_token
from service.app import create_app
from service.core import Services
from service.domain import Role


@asynccontextmanager
async def served(services: Services) -> AsyncIterator[str]:
    """Serve ``services`` over HTTP while open; yields the GraphQL endpoint's URL."""
    config = uvicorn.Config(create_app(services), host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}/graphql"
    finally:
        server.should_exit = True
        await task


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
