"""Distributed-mode harness: ``segport worker`` processes (the real arq worker, see
``tests/runs/worker_process.py``) sharing a test's SQLite store and Redis database, with the
Constant Contact plugin pointed at its fake in both the test and the workers."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

from segport_constant_contact import ConstantContact
from segport_constant_contact.fake import RunningFake

from service.coordination.events import follow_run
from service.core import Services, open_services
from service.domain import ExportRun
from tests.runs.cc_world import ConstantContactPlugin, fast_cc_environment, fast_cc_settings
from tests.support.net import free_port
from tests.support.settings import TEST_ENCRYPTION_KEY, TEST_JWT_SECRET, make_settings

ROOT = Path(__file__).resolve().parents[2]
STOP_TIMEOUT_SECONDS = 10


@asynccontextmanager
async def cc_services(
    database: Path, fake: RunningFake, redis_url: str, batch: int
) -> AsyncIterator[Services]:
    """Services on the SQLite file ``database`` and ``redis_url``, sending to ``fake`` in
    batches of ``batch``, as the worker processes do."""
    destination = ConstantContact(fast_cc_settings(fake))
    destination.limits = replace(destination.limits, batch_max_records=batch)
    settings = make_settings(f"sqlite:///{database}", redis_url=redis_url)
    async with open_services(
        settings, extra_plugins=[ConstantContactPlugin(destination)], load_entry_points=False
    ) as opened:
        yield opened


class WorkerProcesses:
    """``segport worker`` processes sharing the test's store and Redis.

    Each process writes its output to ``log_dir/worker-<n>.log`` when ``log_dir`` is
    given (read it back with :meth:`logs`), else nowhere."""

    def __init__(
        self,
        services: Services,
        fake: RunningFake,
        *,
        batch: int,
        requests_per_second: int,
        completion_wait_seconds: float = 0,
        log_level: str = "WARNING",
        log_dir: Path | None = None,
    ) -> None:
        assert services.settings.redis_url, "worker processes need the test's Redis"
        self.env = {
            **os.environ,
            **fast_cc_environment(fake),
            "SEGPORT_DATABASE_URL": services.settings.database_url,
            "SEGPORT_REDIS_URL": services.settings.redis_url,
            "SEGPORT_JWT_SECRET": TEST_JWT_SECRET,
            "SEGPORT_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
            "SEGPORT_RUN_HEARTBEAT_SECONDS": "0.3",
            "SEGPORT_SCHEDULE_TICK_SECONDS": "0.3",
            "SEGPORT_JOB_COMPLETION_WAIT_SECONDS": str(completion_wait_seconds),
            "SEGPORT_LOG_LEVEL": log_level,
            "TEST_BATCH_MAX_RECORDS": str(batch),
            "TEST_REQUESTS_PER_SECOND": str(requests_per_second),
        }
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        env = {**self.env, "SEGPORT_WORKER_METRICS_PORT": str(free_port())}
        command = [sys.executable, "-m", "tests.runs.worker_process"]
        if self.log_dir is None:
            process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        else:
            with self._log_path(len(self.processes)).open("wb") as log:
                process = subprocess.Popen(
                    command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
                )
        self.processes.append(process)
        return process

    def logs(self, index: int) -> str:
        """What the ``index``-th process started has written so far."""
        return self._log_path(index).read_text(errors="replace")

    def _log_path(self, index: int) -> Path:
        assert self.log_dir is not None, "started without a log_dir: output is not kept"
        return self.log_dir / f"worker-{index}.log"

    def stop_all(self) -> None:
        """SIGTERM every process still running, then kill those that outlast the timeout."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def wait_for_end(services: Services, run_id: str, timeout: float = 60) -> ExportRun:
    """The run's terminal state, as a subscriber sees it."""

    async def follow() -> ExportRun:
        last = None
        async for run in follow_run(services.store, services.events, run_id, recheck_seconds=1):
            last = run
        assert last is not None
        return last

    return await asyncio.wait_for(follow(), timeout)


async def wait_for_sent(services: Services, run_id: str, at_least: int) -> None:
    """Until the (still running) run has sent ``at_least`` contacts."""

    async def poll() -> None:
        while True:
            current = await services.store.get_run(run_id)
            assert current is not None
            assert not current.status.is_terminal, current.message
            if current.counts.contacts_sent >= at_least:
                return
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), 30)
