"""``segport demo``'s start (issue 10, items 14 and 15): the banner's shell lines work as
printed, and a busy port ends the demo at once with one line naming it.

The real command runs in its own process, as ``make demo`` starts it.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
import socket
from pathlib import Path

from tests.connections.test_demo import segport_command
from tests.support.net import free_port

LINE_WAIT_SECONDS = 60
BANNER_END = "Stop with Ctrl-C."
RUN_WAIT_SECONDS = 120


def demo_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SEGPORT_")}


async def start_demo(port: int, data_dir: Path, cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        segport_command(),
        "demo",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=demo_environment(),
        cwd=cwd,
    )


async def test_a_busy_port_ends_the_demo_with_one_line_naming_it(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        data_dir = tmp_path / "demo-data"
        process = await start_demo(port, data_dir, tmp_path)
        stdout, stderr = await asyncio.wait_for(process.communicate(), LINE_WAIT_SECONDS)

    assert process.returncode == 2, (stdout, stderr)
    assert stdout == b"", "nothing is printed before the port is had"
    lines = stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert f"127.0.0.1:{port}" in lines[0]
    assert "--port" in lines[0]
    assert "Traceback" not in lines[0]
    assert not data_dir.exists(), "the demo made nothing before failing"


async def test_the_banner_s_shell_lines_run_the_demo_export_as_printed(tmp_path: Path) -> None:
    port = free_port()
    elsewhere = tmp_path / "another-directory"
    elsewhere.mkdir()
    process = await start_demo(port, tmp_path / "demo-data", tmp_path)
    assert process.stdout is not None
    printed: list[str] = []
    try:
        while not printed or printed[-1].strip() != BANNER_END:
            line = await asyncio.wait_for(process.stdout.readline(), LINE_WAIT_SECONDS)
            assert line, "the demo ended before its banner:\n" + "".join(printed)
            printed.append(line.decode())
        exports = [line.strip() for line in printed if line.strip().startswith("export ")]
        runs = [line.strip() for line in printed if " run " in line and "--url" in line]
        assert len(exports) == 1, printed
        assert len(runs) == 1, printed
        name, _, token = exports[0].removeprefix("export ").partition("=")
        assert name == "SEGPORT_TOKEN"
        command = shlex.split(runs[0])
        assert command[0] == segport_command(), "the command the demo was started with"
        assert f"http://127.0.0.1:{port}/graphql" in command

        # Pasted into a shell in another directory, with nothing else set up.
        follower = await asyncio.create_subprocess_exec(
            *command,
            env={**demo_environment(), "SEGPORT_TOKEN": token},
            cwd=elsewhere,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(follower.communicate(), RUN_WAIT_SECONDS)
        assert follower.returncode == 0, output.decode()
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0
