"""One log format from the first line (issue 10, item 26).

``segport serve`` on a fresh data directory logs ``generated_secret`` while it
resolves its secrets, before anything else. With stderr not a terminal
(``SEGPORT_LOG_FORMAT=auto``) every line must be JSON, those first ones
included, and the uvicorn lines that follow too.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from tests.support.net import free_port

SEGPORT = Path(sys.executable).parent / "segport"
READY = "Application startup complete"
LINE_WAIT_SECONDS = 30


async def stderr_until_ready(data_dir: Path, **environment: str) -> list[str]:
    """The stderr lines of ``segport serve`` up to the one saying it started."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGPORT_")}
    env |= {"SEGPORT_DATABASE_URL": f"sqlite:///{data_dir / 'segport.db'}", **environment}
    process = await asyncio.create_subprocess_exec(
        str(SEGPORT),
        "serve",
        "--port",
        str(free_port()),
        env=env,
        cwd=data_dir,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    lines: list[str] = []
    try:
        while not lines or READY not in lines[-1]:
            line = await asyncio.wait_for(process.stderr.readline(), LINE_WAIT_SECONDS)
            assert line, "serve ended before it started:\n" + "".join(lines)
            lines.append(line.decode())
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), LINE_WAIT_SECONDS)
    return lines


async def test_every_line_is_json_from_the_first_one(tmp_path: Path) -> None:
    lines = await stderr_until_ready(tmp_path)

    events = [json.loads(line) for line in lines]

    names = [event["event"] for event in events]
    assert names[:2] == ["generated_secret", "generated_secret"], names
    assert any(event.get("logger") == "uvicorn.error" for event in events), names
    assert all("timestamp" in event and "level" in event for event in events)
