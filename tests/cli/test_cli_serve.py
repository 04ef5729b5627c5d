"""``segport serve`` for real: a subprocess on a free port that answers /healthz and prints a
development admin token the API accepts; ``segport export-schema`` prints the committed SDL."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from service.cli import app
from tests.support.net import free_port

ROOT = Path(__file__).resolve().parents[2]
SEGPORT = Path(sys.executable).parent / "segport"
STARTUP_DEADLINE_SECONDS = 30


class ServedProcess:
    def __init__(self, process: subprocess.Popen[str], port: int) -> None:
        self.process = process
        self.base_url = f"http://127.0.0.1:{port}"
        self.lines: list[str] = []

    def read_until(self, pattern: str) -> re.Match[str]:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            found = re.search(pattern, line)
            if found:
                return found
        raise AssertionError(f"serve exited before printing {pattern!r}: {''.join(self.lines)}")

    def wait_healthy(self) -> httpx.Response:
        deadline = time.monotonic() + STARTUP_DEADLINE_SECONDS
        while True:
            try:
                return httpx.get(f"{self.base_url}/healthz", timeout=2)
            except httpx.TransportError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(0.05)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServedProcess]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGPORT_")}
    env |= {
        "SEGPORT_DATABASE_URL": f"sqlite:///{tmp_path / 'segport.db'}",
        "PYTHONUNBUFFERED": "1",
    }
    process = subprocess.Popen(
        [str(SEGPORT), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield ServedProcess(process, port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_serve_prints_the_mode_and_graphiql_url_then_answers_healthz(
    served: ServedProcess,
) -> None:
    served.read_until(r"embedded mode")
    url = served.read_until(r"GraphiQL: (\S+)").group(1)
    assert url == f"{served.base_url}/graphql"
    assert served.wait_healthy().status_code == 200


def test_the_printed_development_token_is_an_admin_for_the_api(served: ServedProcess) -> None:
    token = served.read_until(r"admin token.*: (\S+)$").group(1)
    served.wait_healthy()
    response = httpx.post(
        f"{served.base_url}/graphql",
        json={"query": "{ viewer { sub roles } }"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"viewer": {"sub": "admin", "roles": ["admin"]}}}


def test_without_the_token_the_api_answers_unauthenticated(served: ServedProcess) -> None:
    served.read_until(r"admin token")
    served.wait_healthy()
    response = httpx.post(
        f"{served.base_url}/graphql", json={"query": "{ viewer { sub } }"}, timeout=10
    )
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_export_schema_prints_exactly_the_committed_schema_file(
    cli_env: Path, runner: CliRunner
) -> None:
    result = runner.invoke(app, ["export-schema"])
    assert result.exit_code == 0, result.output
    assert result.stdout == (ROOT / "schema.graphql").read_text()
