"""A test's own ``redis-server`` on a free port, which the test may stop and start again
(to see what the service does while Redis is away and after it returns)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.net import accepting, free_port

START_TIMEOUT_SECONDS = 10


class RedisServer:
    """``redis-server`` on 127.0.0.1:``port``, without persistence: a restart empties it."""

    def __init__(self, port: int, directory: Path) -> None:
        self.port = port
        self.directory = directory
        self._process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        executable = shutil.which("redis-server")
        assert executable, "these tests need redis-server on PATH (apt-get install redis-server)"
        self._process = subprocess.Popen(
            [executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not accepting(self.port):
            assert self._process.poll() is None, "redis-server exited at start"
            assert time.monotonic() < deadline, f"redis-server did not listen on {self.port}"
            time.sleep(0.02)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=START_TIMEOUT_SECONDS)
        self._process = None


@contextmanager
def redis_server(directory: Path) -> Iterator[RedisServer]:
    """A started server, stopped on exit."""
    server = RedisServer(free_port(), directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()
