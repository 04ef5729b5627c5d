"""The log scanner other end-to-end tests use to prove no secret reaches the logs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.logscan import LogCapture, assert_contains, assert_no_secrets


def run_printing(*lines: str) -> list[str]:
    script = "import sys\n" + "".join(
        f"print({line!r}, file=sys.{'stderr' if i % 2 else 'stdout'})\n"
        for i, line in enumerate(lines)
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    logs = LogCapture.attach(proc)
    proc.wait(timeout=30)
    logs.join()
    return logs.snapshot()


def test_capture_sees_both_streams_of_the_process() -> None:
    lines = run_printing("on stdout", "on stderr")
    assert sorted(lines) == ["on stderr", "on stdout"]
    assert_contains(lines, "stderr")


def test_a_leaked_secret_fails_without_repeating_the_secret() -> None:
    lines = run_printing('{"event": "refreshed"}', '{"access_token": "at-LEAK-123"}')
    with pytest.raises(AssertionError) as failed:
        assert_no_secrets(lines, ["nothing-here", "at-LEAK-123"])
    assert "secret #1" in str(failed.value)
    assert "at-LEAK-123" not in str(failed.value)


def test_clean_logs_pass() -> None:
    assert_no_secrets(run_printing("run_finished sent=3"), ["at-LEAK-123"])
