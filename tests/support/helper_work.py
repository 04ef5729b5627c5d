"""Calls for a helper process in tests (module-level, so that a new interpreter finds them)."""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Callable
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


def count(emit: Callable[[object], None], items: int, then: str) -> str:
    """Emits ``items`` numbered items of 10 kB each, then answers or fails as ``then`` says."""
    for number in range(items):
        emit((number, "x" * 10_000))
    if then == "refuse":
        raise ValueError(f"refused after {items}")
    if then == "die":
        sys.stdout.flush()
        os._exit(4)
    return then


def emit_then_wait(emit: Callable[[object], None], pid_file: Path, *_: object) -> None:
    emit("first")
    pid_file.write_text(str(os.getpid()))
    time.sleep(600)


def digests(*buffers: bytearray) -> list[str]:
    return [hashlib.sha256(buffer).hexdigest() for buffer in buffers]
