"""Calls for a helper process in tests (module-level, so that a new interpreter finds them)."""

from __future__ import annotations

import os
import time
from pathlib import Path


def add(a: int, b: int) -> int:
    print("stray output must not reach the answer")  # noqa: T201 (the helper's stdout)
    return a + b


def refuse(value: str) -> None:
    raise ValueError(f"no such thing as {value!r}")


def leave() -> None:
    os._exit(3)


def wait_forever(pid_file: Path) -> None:
    pid_file.write_text(str(os.getpid()))
    time.sleep(600)
