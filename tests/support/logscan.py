"""Capture a subprocess's log lines and assert that none of them holds a secret.

Usage (e.g. in a runs end-to-end test)::

    proc = subprocess.Popen([...], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    logs = LogCapture.attach(proc)
    ...                                  # drive the service
    proc.terminate(); proc.wait()
    logs.join()
    assert_no_secrets(logs.lines, [access_token, refresh_token, client_secret])

The assertion message names the line and which secret (by position, never
by value) so a failing test does not itself leak the secret into CI logs.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO


@dataclass
class LogCapture:
    """Lines read from a process's stdout and stderr, as they come."""

    lines: list[str] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def attach(cls, process: subprocess.Popen[str]) -> LogCapture:
        """Start reading ``process``'s piped stdout and stderr (text mode) in threads."""
        capture = cls()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                thread = threading.Thread(target=capture._pump, args=(stream,), daemon=True)
                thread.start()
                capture._threads.append(thread)
        return capture

    def _pump(self, stream: IO[str]) -> None:
        # The pipe is ours once attached: close it at end of file, so no test leaves it open.
        with stream:
            for line in stream:
                with self._lock:
                    self.lines.append(line.rstrip("\n"))

    def join(self, timeout: float = 10.0) -> None:
        """Wait until both streams are closed (call after the process exited)."""
        for thread in self._threads:
            thread.join(timeout)

    def snapshot(self) -> list[str]:
        with self._lock:
            return list(self.lines)


def assert_no_secrets(lines: Iterable[str], secrets: Iterable[str]) -> None:
    """Fail when any line contains any of ``secrets`` (empty strings are ignored)."""
    wanted = [s for s in secrets if s]
    assert wanted, "give at least one non-empty secret to look for"
    leaks = [
        f"line {number}: secret #{index} appears ({len(line)} chars)"
        for number, line in enumerate(lines, 1)
        for index, secret in enumerate(wanted)
        if secret in line
    ]
    assert not leaks, "secrets leaked into the logs:\n" + "\n".join(leaks)


def assert_contains(lines: Iterable[str], text: str) -> None:
    """Fail unless some line contains ``text`` (proves the capture saw the logs at all)."""
    assert any(text in line for line in lines), f"no log line contains {text!r}"
