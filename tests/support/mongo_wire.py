"""Start and stop the mongoeco wire server that stands in for MongoDB in tests.

The server needs Python 3.13 with ``mongoeco[wire]``: the interpreter is
``$SEGPORT_TEST_MONGO_PYTHON`` if set, else ``.venv-mongo/bin/python`` at the
repository root (``make .venv-mongo`` creates it). Without either, starting it
raises :class:`MongoTestServerUnavailable` with the instructions.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVER_SCRIPT = Path(__file__).with_name("mongo_wire_server.py")
START_TIMEOUT_SECONDS = 60.0

INSTRUCTIONS = (
    "The MongoDB store tests need a MongoDB server. Either set SEGPORT_TEST_MONGODB_URL "
    "to a MongoDB URL (e.g. mongodb://127.0.0.1:27017/?directConnection=true), or create "
    "the Python 3.13 environment that runs mongoeco's wire server:\n"
    "    $(pyenv root)/versions/3.13*/bin/python -m venv .venv-mongo && "
    ".venv-mongo/bin/pip install 'mongoeco[wire]'\n"
    "(or point SEGPORT_TEST_MONGO_PYTHON at a Python 3.13 that has mongoeco[wire])."
)


class MongoTestServerUnavailable(RuntimeError):
    """No MongoDB for the tests: the message says how to provide one."""


@dataclass
class MongoWireServer:
    process: subprocess.Popen[str]
    stderr: IO[str]
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"mongodb://{self.host}:{self.port}/?directConnection=true"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.stderr.close()


def mongo_python() -> Path:
    """The Python 3.13 interpreter that can run the wire server."""
    configured = os.environ.get("SEGPORT_TEST_MONGO_PYTHON")
    python = Path(configured) if configured else REPO_ROOT / ".venv-mongo" / "bin" / "python"
    if not python.exists():
        source = "SEGPORT_TEST_MONGO_PYTHON" if configured else "the default"
        raise MongoTestServerUnavailable(f"{python} ({source}) does not exist.\n{INSTRUCTIONS}")
    return python


def start_mongo_wire_server() -> MongoWireServer:
    """Start the wire server on a free port and return once it accepts connections."""
    python = mongo_python()
    # stderr to a file, not a pipe: a chatty server must never block on a full pipe.
    stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed by MongoWireServer.stop)
    process = subprocess.Popen(
        [str(python), str(SERVER_SCRIPT), "0"],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    assert process.stdout is not None
    # The server picks its own free port (no race with other processes) and prints it.
    line = ""
    while time.monotonic() < deadline and process.poll() is None:
        ready, _, _ = select.select([process.stdout], [], [], 0.2)
        if ready:
            line = process.stdout.readline()
            break
    if not line.startswith("LISTENING "):
        process.kill()
        process.wait()
        process.stdout.close()
        stderr.seek(0)
        output = stderr.read().strip()[-2000:]
        stderr.close()
        raise MongoTestServerUnavailable(
            f"the mongoeco wire server ({python} {SERVER_SCRIPT}) did not start: "
            f"{line.strip() or 'no output'}\n{output}\n{INSTRUCTIONS}"
        )
    _, host, port = line.split()
    server = MongoWireServer(process=process, stderr=stderr, host=host, port=int(port))
    _wait_accepting(server, deadline)
    return server


def _wait_accepting(server: MongoWireServer, deadline: float) -> None:
    while True:
        try:
            with socket.create_connection((server.host, server.port), timeout=1):
                return
        except OSError as exc:
            if time.monotonic() > deadline or server.process.poll() is not None:
                server.stop()
                raise MongoTestServerUnavailable(
                    f"the mongoeco wire server on port {server.port} does not accept "
                    f"connections: {exc}"
                ) from exc
            time.sleep(0.05)


if __name__ == "__main__":  # a quick manual check: python -m tests.support.mongo_wire
    started = start_mongo_wire_server()
    print(started.url, file=sys.stderr)
    started.stop()
