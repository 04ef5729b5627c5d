"""/readyz follows the database and Redis: 503 with a reason while one is down, 200 once back.

Each test starts its own server (a redis-server, or the mongoeco wire server) on
a fixed free port, stops it, and starts it again on the same port, so nothing
shared with other tests is touched.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from service.app import create_app
from service.core import open_services
from tests.support.mongo_wire import SERVER_SCRIPT, mongo_python
from tests.support.net import accepting, free_port
from tests.support.settings import make_settings

START_TIMEOUT = 20.0
RECOVERY_TIMEOUT = 20.0


@dataclass
class RestartableServer:
    """A server process on a fixed port that a test can stop and start again."""

    command: list[str]
    port: int
    process: subprocess.Popen[bytes] | None = field(default=None)

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not accepting(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.command[0]} did not start on port {self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


@pytest.fixture
def redis_server() -> Iterator[RestartableServer]:
    port = free_port()
    server = RestartableServer(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        port,
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def mongo_server() -> Iterator[RestartableServer]:
    port = free_port()
    server = RestartableServer([str(mongo_python()), str(SERVER_SCRIPT), str(port)], port)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def redis_app(
    sqlite_url: str, redis_server: RestartableServer
) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(sqlite_url, redis_url=f"redis://127.0.0.1:{redis_server.port}/0")
    async with open_services(settings, load_entry_points=False) as services:
        transport = httpx.ASGITransport(app=create_app(services))
        async with httpx.AsyncClient(transport=transport, base_url="http://segport") as client:
            yield client


@pytest.fixture
async def mongo_app(mongo_server: RestartableServer) -> AsyncIterator[httpx.AsyncClient]:
    url = f"mongodb://127.0.0.1:{mongo_server.port}/segport_ready?directConnection=true"
    settings = make_settings(url, mongodb_timeout_ms=500)
    async with open_services(settings, load_entry_points=False) as services:
        transport = httpx.ASGITransport(app=create_app(services))
        async with httpx.AsyncClient(transport=transport, base_url="http://segport") as client:
            yield client


async def until_ready(client: httpx.AsyncClient) -> httpx.Response:
    """Poll /readyz until it answers 200 (the dependency reconnects on its own)."""
    deadline = time.monotonic() + RECOVERY_TIMEOUT
    while True:
        response = await client.get("/readyz")
        if response.status_code == 200 or time.monotonic() > deadline:
            return response
        await asyncio.sleep(0.2)


async def test_readyz_is_503_naming_redis_while_redis_is_down_and_recovers_by_itself(
    redis_app: httpx.AsyncClient, redis_server: RestartableServer
) -> None:
    assert (await redis_app.get("/readyz")).status_code == 200

    redis_server.stop()
    down = await redis_app.get("/readyz")
    assert down.status_code == 503
    assert down.json()["status"] == "unavailable"
    assert "Redis" in down.json()["reason"]
    assert (await redis_app.get("/healthz")).status_code == 200, "liveness must not follow Redis"

    redis_server.start()
    back = await until_ready(redis_app)
    assert back.status_code == 200, back.text
    assert back.json() == {"status": "ok"}


async def test_readyz_is_503_naming_the_database_while_it_is_down_and_recovers_by_itself(
    mongo_app: httpx.AsyncClient, mongo_server: RestartableServer
) -> None:
    assert (await mongo_app.get("/readyz")).status_code == 200

    mongo_server.stop()
    down = await mongo_app.get("/readyz")
    assert down.status_code == 503
    assert "database" in down.json()["reason"]
    assert "mongodb://" not in down.text, "the reason must not echo the connection URL"

    mongo_server.start()
    back = await until_ready(mongo_app)
    assert back.status_code == 200, back.text
