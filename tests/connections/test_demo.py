"""``segport demo``: started in its own process, queried over GraphQL, stopped, restarted."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

STARTUP_LINES = 200
"""Most output lines read while waiting for the banner (it ends with the mutation)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def demo_process(data_dir: Path) -> AsyncIterator[tuple[str, str, str]]:
    """Run the demo; yields (base URL, admin token, the printed runExport mutation)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGPORT_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import sys; from pathlib import Path; from service.demo import run_demo; "
        "run_demo('127.0.0.1', int(sys.argv[1]), Path(sys.argv[2]))",
        str(port),
        str(data_dir),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    assert process.stdout is not None
    printed: list[str] = []
    token = mutation = ""
    try:
        for _ in range(STARTUP_LINES):
            line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
            assert line, "the demo ended before it was ready:\n" + "".join(printed)
            printed.append(line)
            if line.startswith("eyJ"):
                token = line.strip()
            if "runExport" in line:
                mutation = line.strip()
                break
        assert token, "".join(printed)
        yield f"http://127.0.0.1:{port}", token, mutation
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        rest = await asyncio.wait_for(process.stdout.read(), 30)
        code = await asyncio.wait_for(process.wait(), 30)
        assert code == 0, "".join(printed) + rest.decode()
        assert b"segport demo stopped." in rest


DEMO_QUERY = """
{
  exports(first: 10) {
    totalCount
    edges { node { id displayName settings
      connection { displayName status account exportUser }
      segments { name } } }
  }
  segments(first: 10) { totalCount }
}
"""


async def query(base_url: str, token: str) -> dict[str, object]:
    async with httpx.AsyncClient() as client:
        answer = await client.post(
            f"{base_url}/graphql",
            json={"query": DEMO_QUERY},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert "errors" not in body, body
    return body["data"]


async def test_demo_serves_a_connected_demo_export_and_restarts_without_duplicates(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "demo-data"
    async with demo_process(data_dir) as (base_url, token, mutation):
        first = await query(base_url, token)

    exports = first["exports"]
    assert isinstance(exports, dict)
    assert exports["totalCount"] == 1
    export = exports["edges"][0]["node"]
    assert export["settings"] == {"listId": "07936f78-662a-11eb-af0a-fa163e56c9b0"}
    assert export["connection"] == {
        "displayName": "Demo Constant Contact",
        "status": "CONNECTED",
        "account": "Fake Outfitters",
        "exportUser": "demo-admin",
    }
    assert export["segments"] == [{"name": "Newsletter subscribers"}]
    assert first["segments"] == {"totalCount": 3}
    assert f'exportId: "{export["id"]}"' in mutation
    assert (data_dir / "segport.db").exists()

    # A second start on the same data directory reuses everything, and connects again
    # (the new fake knows none of the old tokens).
    async with demo_process(data_dir) as (base_url, token, _):
        second = await query(base_url, token)
    assert second == first
