"""SIGTERM on a real ``segport serve``: stop accepting, finish what is in flight, close websockets.

The server is the real command in a subprocess (embedded mode, SQLite in a tmp
dir). The in-flight request is a GraphQL POST whose body is still arriving when
the signal is sent; it must still be answered.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from service.access.auth import mint_token
from service.domain import Role
from tests.support.logscan import LogCapture
from tests.support.net import accepting, free_port
from tests.support.settings import TEST_ENCRYPTION_KEY, TEST_JWT_SECRET, make_settings

START_TIMEOUT = 30.0
# uvicorn re-raises the signal once it has shut down gracefully, so the exit status
# is "terminated by SIGTERM"; 0 is accepted too.
GRACEFUL_EXIT = (0, -signal.SIGTERM)
# 1000 normal, 1001 going away, 1012 service restart (what uvicorn sends on shutdown:
# "reconnect, to another instance"). A dropped TCP connection (1006) is not clean.
CLEAN_CLOSE_CODES = (1000, 1001, 1012)

RunningServer = tuple[subprocess.Popen[str], int, str]
"""The `segport serve` process, its port and an admin token for it."""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    port = free_port()
    database_url = f"sqlite:///{tmp_path / 'segport.db'}"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "SEGPORT_DATABASE_URL": database_url,
        "SEGPORT_JWT_SECRET": TEST_JWT_SECRET,
        "SEGPORT_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
        "SEGPORT_LOG_FORMAT": "json",
    }
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("segport")), "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    logs = LogCapture.attach(process)
    deadline = time.monotonic() + START_TIMEOUT
    while not accepting(port):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            logs.join()
            raise RuntimeError("segport serve did not start:\n" + "\n".join(logs.lines[-30:]))
        time.sleep(0.1)
    token = mint_token(make_settings(database_url), "ops", [Role.ADMIN])
    yield process, port, token
    if process.poll() is None:
        process.kill()
        process.wait()
    logs.join()


def test_sigterm_finishes_an_in_flight_request_then_stops_accepting(server: RunningServer) -> None:
    process, port, token = server
    body = json.dumps({"query": "query Who { viewer { sub } }"}).encode()
    half = len(body) // 2
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(
            b"POST /graphql HTTP/1.1\r\nHost: segport\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body[:half]
        )
        process.send_signal(signal.SIGTERM)
        # The listening socket closes while our request is still open.
        deadline = time.monotonic() + 10
        while accepting(port) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not accepting(port), "the server still accepts connections after SIGTERM"
        conn.sendall(body[half:])
        response = b""
        while b"\r\n\r\n" not in response or not response.rstrip().endswith(b"}"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            response += chunk
    head, _, payload = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert json.loads(payload)["data"]["viewer"]["sub"] == "ops"
    assert process.wait(timeout=20) in GRACEFUL_EXIT


def drain(ws: ClientConnection) -> None:
    """Read until the server closes the connection (raises ConnectionClosed)."""
    while True:
        ws.recv(timeout=20)


def test_sigterm_closes_open_websocket_subscriptions_cleanly(server: RunningServer) -> None:
    process, port, token = server
    with connect(
        f"ws://127.0.0.1:{port}/graphql",
        subprotocols=[Subprotocol("graphql-transport-ws")],
        open_timeout=10,
    ) as ws:
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        ws.send(json.dumps(init))
        assert json.loads(ws.recv(timeout=10))["type"] == "connection_ack"
        process.send_signal(signal.SIGTERM)
        with pytest.raises(ConnectionClosed) as closed:
            drain(ws)
    assert closed.value.rcvd is not None, "the server must send a close frame, not drop the TCP"
    assert closed.value.rcvd.code in CLEAN_CLOSE_CODES, closed.value.rcvd
    assert process.wait(timeout=20) in GRACEFUL_EXIT
