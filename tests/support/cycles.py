"""How many objects a piece of work leaves in reference cycles (garbage only the cyclic
collector frees), and of which types: the report tests use to keep requests cycle-free.

The app is called through ASGI directly (no HTTP client, whose own objects would
be counted), with the collector saving what it finds instead of freeing it.
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

Asgi = Callable[..., Awaitable[None]]


@dataclass
class CycleReport:
    runs: int
    objects: int = 0
    types: Counter[str] = field(default_factory=Counter)

    @property
    def per_run(self) -> float:
        return self.objects / self.runs

    def __str__(self) -> str:
        top = ", ".join(
            f"{name} {count / self.runs:g}" for name, count in self.types.most_common(12)
        )
        return f"{self.per_run:g} objects in cycles per run ({top})"


@contextmanager
def cycle_garbage(runs: int) -> Iterator[CycleReport]:
    """Count what becomes cyclic garbage inside the block (``runs`` times the same work)."""
    report = CycleReport(runs)
    gc.collect()
    gc.garbage.clear()
    flags = gc.get_debug()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield report
        gc.collect()
        report.objects = len(gc.garbage)
        report.types.update(type(o).__qualname__ for o in gc.garbage)
    finally:
        gc.set_debug(flags)
        gc.garbage.clear()


async def asgi_post(
    app: Asgi, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, bytes]:
    """One POST through the ASGI interface: the status and the whole body."""
    raw_headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    raw_headers.append((b"content-length", str(len(body)).encode()))
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": raw_headers,
        "client": ("127.0.0.1", 50000),
        "server": ("segport.test", 80),
    }
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)
