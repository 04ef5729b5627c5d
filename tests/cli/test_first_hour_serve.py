"""``segport serve`` as a newcomer runs it: on another port the OAuth redirect URI follows the
port; an explicit public URL on another port is warned about once; a busy port stops the
command with one line before a banner or a token is printed."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import jwt
import pytest
from structlog.testing import capture_logs

from service.settings import Settings
from tests.support.net import free_port
from tests.support.settings import TEST_ENCRYPTION_KEY, TEST_JWT_SECRET

SEGPORT = Path(sys.executable).parent / "segport"
STARTUP_DEADLINE_SECONDS = 30
MISMATCH_EVENT = "public_url_not_listening_address"


def _environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGPORT_")}
    return env | {
        "SEGPORT_DATABASE_URL": f"sqlite:///{tmp_path / 'segport.db'}",
        # Given, so that nothing is generated and logged: stderr then holds only what we test.
        "SEGPORT_JWT_SECRET": TEST_JWT_SECRET,
        "SEGPORT_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
        "SEGPORT_LOG_FORMAT": "json",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


class Served:
    """A ``segport serve`` subprocess; its stdout and stderr are merged into ``lines``."""

    def __init__(self, tmp_path: Path, port: int, **env: str) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [str(SEGPORT), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=_environment(tmp_path, **env),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def read_until(self, pattern: str) -> re.Match[str]:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            found = re.search(pattern, line)
            if found:
                return found
        raise AssertionError(f"serve exited before printing {pattern!r}: {''.join(self.lines)}")

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_DEADLINE_SECONDS
        while True:
            try:
                httpx.get(f"{self.base_url}/healthz", timeout=2)
                return
            except httpx.TransportError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(0.05)

    def graphql(self, token: str, query: str) -> dict[str, object]:
        response = httpx.post(
            f"{self.base_url}/graphql",
            json={"query": query},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        body: dict[str, object] = response.json()
        return body

    def stop(self) -> list[str]:
        """Stop the server; every line it printed."""
        self.process.terminate()
        try:
            rest, _ = self.process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            rest, _ = self.process.communicate()
        return self.lines + rest.splitlines(keepends=True)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[type[Served]]:
    started: list[Served] = []

    class Tracked(Served):
        def __init__(self, tmp_path: Path, port: int, **env: str) -> None:
            super().__init__(tmp_path, port, **env)
            started.append(self)

    yield Tracked
    for served in started:
        if served.process.poll() is None:
            served.stop()


def _authorization_url(served: Served, token: str) -> httpx.URL:
    created = served.graphql(
        token,
        'mutation { createConnection(input: {destinationType: "constant_contact", '
        'displayName: "CC", acceptDataPrivacy: true}) { connection { id } } }',
    )
    connection_id = created["data"]["createConnection"]["connection"]["id"]  # type: ignore[index]
    authorized = served.graphql(
        token,
        f'mutation {{ authorizeConnection(input: {{connectionId: "{connection_id}"}}) '
        "{ authorizationUrl userErrors { message } } }",
    )
    payload = authorized["data"]["authorizeConnection"]  # type: ignore[index]
    assert payload["userErrors"] == [], payload
    return httpx.URL(payload["authorizationUrl"])


def _mismatch_warnings(lines: list[str]) -> list[dict[str, object]]:
    found = []
    for line in lines:
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("event") == MISMATCH_EVENT:
                found.append(record)
    return found


def test_the_oauth_redirect_uri_follows_the_port_serve_listens_on(
    tmp_path: Path, serve: type[Served]
) -> None:
    served = serve(
        tmp_path,
        free_port(),
        SEGPORT_CONSTANT_CONTACT_CLIENT_ID="client-1",
        SEGPORT_CONSTANT_CONTACT_OAUTH_FLOW="pkce",
    )
    token = served.read_until(r"admin token.*: (\S+)$").group(1)
    served.wait_healthy()

    url = _authorization_url(served, token)

    assert url.params["redirect_uri"] == f"{served.base_url}/oauth/callback"
    assert _mismatch_warnings(served.stop()) == []


def test_an_explicit_public_url_on_another_port_is_warned_about_once_naming_both(
    tmp_path: Path, serve: type[Served]
) -> None:
    port, other = free_port(), free_port()
    public = f"http://127.0.0.1:{other}"
    served = serve(
        tmp_path,
        port,
        SEGPORT_PUBLIC_URL=public,
        SEGPORT_CONSTANT_CONTACT_CLIENT_ID="client-1",
        SEGPORT_CONSTANT_CONTACT_OAUTH_FLOW="pkce",
    )
    token = served.read_until(r"admin token.*: (\S+)$").group(1)
    served.wait_healthy()

    url = _authorization_url(served, token)
    _authorization_url(served, token)

    assert url.params["redirect_uri"] == f"{public}/oauth/callback", "an explicit URL wins"
    warnings = _mismatch_warnings(served.stop())
    assert len(warnings) == 1
    assert warnings[0]["level"] == "warning"
    assert warnings[0]["public_url"] == public
    assert warnings[0]["listening"] == served.base_url


def test_a_busy_port_stops_serve_with_one_line_naming_it_and_no_token(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        result = subprocess.run(
            [str(SEGPORT), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=_environment(tmp_path),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert result.stdout == "", "no banner and no token for the process that holds the port"
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"port {port}" in result.stderr
    assert "in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_development_token_lives_no_longer_than_the_token_cap(
    tmp_path: Path, serve: type[Served]
) -> None:
    served = serve(tmp_path, free_port(), SEGPORT_TOKEN_MAX_TTL_SECONDS="3600")
    line = served.read_until(r"admin token \(valid (\S+)\): (\S+)$")
    claims = jwt.decode(line.group(2), options={"verify_signature": False})
    lifetime = datetime.fromtimestamp(claims["exp"], UTC) - datetime.fromtimestamp(
        claims["iat"], UTC
    )
    assert (line.group(1), lifetime) == ("1h", timedelta(hours=1))


# -- the public URL of a listening address, without a process ----------------------------


@pytest.fixture
def unset_public_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEGPORT_PUBLIC_URL", raising=False)


@pytest.mark.usefixtures("unset_public_url")
@pytest.mark.parametrize(
    ("host", "port", "public_url"),
    [
        ("127.0.0.1", 18100, "http://127.0.0.1:18100"),
        ("localhost", 8001, "http://localhost:8001"),
        ("0.0.0.0", 8080, "http://127.0.0.1:8080"),
        ("::", 8080, "http://[::1]:8080"),
        ("::1", 9000, "http://[::1]:9000"),
    ],
)
def test_without_a_public_url_it_is_the_address_a_browser_reaches(
    host: str, port: int, public_url: str
) -> None:
    settings = Settings().listening_on(host, port)
    assert settings.public_url == public_url
    assert settings.oauth_redirect_uri == f"{public_url}/oauth/callback"


def test_an_explicit_public_url_behind_a_proxy_is_kept_without_a_warning() -> None:
    with capture_logs() as logs:
        settings = Settings(public_url="https://segport.example.com").listening_on("0.0.0.0", 8000)
    assert settings.oauth_redirect_uri == "https://segport.example.com/oauth/callback"
    assert [entry["log_level"] for entry in logs if entry["event"] == MISMATCH_EVENT] == ["info"]


def test_an_explicit_public_url_matching_the_address_logs_nothing() -> None:
    with capture_logs() as logs:
        Settings(public_url="http://127.0.0.1:18100/").listening_on("127.0.0.1", 18100)
    assert [entry for entry in logs if entry["event"] == MISMATCH_EVENT] == []
