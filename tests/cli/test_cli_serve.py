"""``segport serve`` for real: a subprocess on a free port that answers /healthz and prints a
development admin token the API accepts; ``segport export-schema`` prints the committed SDL."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
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


class RunningServe:
    """One ``segport serve`` subprocess and every line it has printed so far (read by a thread,
    so the pipe never fills however much the server logs)."""

    def __init__(self, process: subprocess.Popen[str], port: int) -> None:
        self.process = process
        self.base_url = f"http://127.0.0.1:{port}"
        self.lines: list[str] = []
        self._ended = False
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        with self.process.stdout as stdout:
            for line in stdout:
                with self._changed:
                    self.lines.append(line)
                    self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def line(self, index: int) -> str | None:
        """Output line ``index``, waiting for it; None when the output ended before it."""
        deadline = time.monotonic() + STARTUP_DEADLINE_SECONDS
        with self._changed:
            while index >= len(self.lines) and not self._ended:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"serve printed nothing more: {''.join(self.lines)}")
                self._changed.wait(remaining)
            return self.lines[index] if index < len(self.lines) else None

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=10)


class ServedProcess:
    """What one test sees of the module's server: its output from the first line on (each
    test reads it from the start, as if the server had started for it), and its URL."""

    def __init__(self, serve: RunningServe) -> None:
        self._serve = serve
        self._next_line = 0
        self.process = serve.process
        self.base_url = serve.base_url

    def read_until(self, pattern: str) -> re.Match[str]:
        while (line := self._serve.line(self._next_line)) is not None:
            self._next_line += 1
            found = re.search(pattern, line)
            if found:
                return found
        lines = "".join(self._serve.lines)
        raise AssertionError(f"serve exited before printing {pattern!r}: {lines}")

    def wait_healthy(self) -> httpx.Response:
        deadline = time.monotonic() + STARTUP_DEADLINE_SECONDS
        while True:
            try:
                return httpx.get(f"{self.base_url}/healthz", timeout=2)
            except httpx.TransportError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(0.05)


@pytest.fixture(scope="module")
def running_serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServe]:
    """One server for the module: its tests only read its start-up output and ask who they
    are, so sharing it couples nothing and saves a start-up per test."""
    data_dir = tmp_path_factory.mktemp("serve")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGPORT_")}
    env |= {
        "SEGPORT_DATABASE_URL": f"sqlite:///{data_dir / 'segport.db'}",
        "PYTHONUNBUFFERED": "1",
    }
    process = subprocess.Popen(
        [str(SEGPORT), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=data_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    serve = RunningServe(process, port)
    try:
        yield serve
    finally:
        serve.stop()


@pytest.fixture
def served(running_serve: RunningServe) -> ServedProcess:
    return ServedProcess(running_serve)


def test_serve_prints_the_mode_and_explorer_url_then_answers_healthz(
    served: ServedProcess,
) -> None:
    served.read_until(r"embedded mode")
    url = served.read_until(r"GraphQL explorer: (\S+)").group(1)
    assert url == f"{served.base_url}/graphql"
    assert served.wait_healthy().status_code == 200


def test_serve_prints_a_console_link_signing_in_through_the_fragment(
    served: ServedProcess,
) -> None:
    link = served.read_until(r"Console \(signs in as the development admin\): (\S+)").group(1)
    token = served.read_until(r"admin token.*: (\S+)$").group(1)
    page, _, fragment = link.partition("#")
    assert page == f"{served.base_url}/console/"
    assert fragment == f"token={token}", "the token travels only in the fragment"
    served.wait_healthy()
    response = httpx.get(page, timeout=10)
    assert response.status_code == 200
    assert '<script type="module" src="app.js">' in response.text


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
