"""Benchmark: the pages frontends poll and live run events, segport beside bare strawberry.

    .venv/bin/python bench/api_load.py                  # everything (about 6 minutes)
    .venv/bin/python bench/api_load.py --duration 5 --clients 1,10 --subscribers 100
    .venv/bin/python bench/api_load.py --no-subscriptions
    .venv/bin/python bench/api_load.py --record-reference   # only on the code before issue 14

Seeds a fresh SQLite file (embedded mode) with 100 exports, 200 segments,
5,000 profiles and 300 runs (``bench/api_seed.py``), serves it with segport
(one uvicorn worker, a subprocess) and, beside it in the same run, a bare
strawberry app answering the same queries from memory (``bench/api_bare.py``).

1. Checks segport's answers to the three operations are identical to the
   ones recorded before issue 14 (``bench/api_load_reference.json``), and the
   bare app's to segport's.
2. Drives each page (``exports(first: 50)``, ``exportRuns(first: 50)``,
   ``node(id:)`` of a run) with ``wrk`` at 1, 10 and 50 connections,
   alternating segport and the control; prints req/s, p50, p99, the server's
   CPU per request, and the ratios.
3. Subscription fan-out (needs ``redis-server`` on PATH; events go through Redis
   pub/sub as in distributed mode): N subscribers of ``exportRuns`` on each
   app, 20 events published; prints the p99 lag from the first to the last
   subscriber of each event, the memory per idle subscription, and the memory
   after the subscribers close compared with before they opened.

Needs ``wrk`` on PATH (``apt-get install wrk``). Results: docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import api_seed

REFERENCE = Path(__file__).resolve().parent / "api_load_reference.json"
JWT_SECRET = "bench-secret-bench-secret-bench-secret-0123"
ENCRYPTION_KEY = "zCVq5b7kFBUuiXfpLYIiqJB2c8Ju1pZmbWTqpS6Y67E="
CHANNEL = "segport:runs"
EVENTS = 20


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=15, help="seconds per wrk run")
    parser.add_argument("--clients", default="1,10,50", help="wrk connection counts")
    parser.add_argument("--subscribers", default="100,500,1000", help="subscriber counts")
    parser.add_argument("--no-subscriptions", action="store_true")
    parser.add_argument("--pages", default="exports,runs,node", help="which pages to drive")
    parser.add_argument("--record-reference", action="store_true")
    parser.add_argument(
        "--segport-allocator",
        choices=["pymalloc", "malloc"],
        default="pymalloc",
        help="PYTHONMALLOC of segport's server (malloc: glibc's, which malloc_trim can empty "
        "after subscriptions close; the control keeps Python's default)",
    )
    parser.add_argument(
        "--ws",
        default=os.environ.get("SEGPORT_BENCH_WS", "auto"),
        help="uvicorn's websocket implementation (auto, websockets-sansio, ...): the bare "
        "control's; segport's too when not auto (auto: segport's own, as `segport serve`)",
    )
    # Internal: serve one app (the benchmark starts itself in a subprocess).
    parser.add_argument("--serve", choices=["segport", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--answers", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--redis-url", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def settings_env(
    database: Path, redis_url: str | None, allocator: str = "pymalloc"
) -> dict[str, str]:
    env = {
        "PYTHONMALLOC": allocator,
        "SEGPORT_DATABASE_URL": f"sqlite:///{database}",
        "SEGPORT_JWT_SECRET": JWT_SECRET,
        "SEGPORT_ENCRYPTION_KEY": ENCRYPTION_KEY,
        "SEGPORT_LOG_LEVEL": "WARNING",
        "SEGPORT_MAX_SUBSCRIPTIONS_PER_USER": "100000",
        "SEGPORT_SCHEDULE_TICK_SECONDS": "3600",
    }
    if redis_url:
        env["SEGPORT_REDIS_URL"] = redis_url
    return env


# -- the served apps (subprocesses) ------------------------------------------------------


def serve(args: argparse.Namespace) -> None:
    import uvicorn

    from service.api.socket_protocol import server_config

    options: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": args.port,
        "log_level": "warning",
        "access_log": False,
    }
    if args.serve == "segport":
        from service.app import create_app_from_settings
        from service.settings import Settings

        # As `segport serve` runs it (its websocket protocol, no permessage-deflate).
        config = server_config(create_app_from_settings(Settings()), **options)
        if args.ws != "auto":
            config.ws = args.ws
    else:
        import api_bare

        # uvicorn's own websocket protocol, without permessage-deflate as segport.
        config = uvicorn.Config(
            api_bare.make_app(args.answers, args.redis_url),
            ws=args.ws,
            ws_per_message_deflate=False,
            **options,
        )
    uvicorn.Server(config).run()


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    url: str

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")


@contextlib.contextmanager
def started(name: str, extra: list[str], env: dict[str, str]) -> Iterator[Server]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", name, "--port", str(port), *extra],
        env={**os.environ, **env},
    )
    url = f"http://127.0.0.1:{port}/graphql"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url.replace("/graphql", "/healthz"), timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"{name} did not start") from None
                time.sleep(0.2)
        yield Server(name, process, url)
    finally:
        process.terminate()
        process.wait()


# -- answers ------------------------------------------------------------------------------


def operations() -> dict[str, dict[str, Any]]:
    return {
        "exports_page": {"query": api_seed.EXPORTS_PAGE},
        "runs_page": {"query": api_seed.RUNS_PAGE},
        "run_node": {"query": api_seed.RUN_NODE, "variables": {"id": api_seed.RUN_NODE_ID}},
    }


def answers(url: str, token: str | None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    found = {}
    for name, body in operations().items():
        response = httpx.post(url, json=body, headers=headers, timeout=60)
        response.raise_for_status()
        found[name] = response.json()
        if "errors" in found[name]:
            raise RuntimeError(f"{name}: {found[name]['errors']}")
    return found


# -- wrk ----------------------------------------------------------------------------------


@dataclass
class Load:
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_ms: float
    errors: int


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def drive(
    server: Server,
    body: dict[str, Any],
    token: str | None,
    clients: int,
    seconds: int,
    workdir: Path,
) -> Load:
    script = workdir / "post.lua"
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(json.dumps(body))}"]
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    script.write_text("\n".join(lines) + "\n")
    cpu_before = server.cpu_seconds()
    out = subprocess.run(
        [
            "wrk",
            "-t",
            str(min(2, clients)),
            "-c",
            str(clients),
            "-d",
            f"{seconds}s",
            "--timeout",
            "30s",
            "--latency",
            "-s",
            str(script),
            server.url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cpu = server.cpu_seconds() - cpu_before
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s*50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s*99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = int(bad.group(1)) if bad else 0
    socket_errors = re.search(r"Socket errors: (.*)", out)
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
    return Load(requests, rps, p50, p99, 1000 * cpu / max(requests, 1), errors)


def load_table(
    segport: Server,
    bare: Server,
    token: str,
    pages: list[str],
    clients: list[int],
    seconds: int,
    workdir: Path,
) -> None:
    bodies = operations()
    names = {"exports": "exports_page", "runs": "runs_page", "node": "run_node"}
    for page in pages:
        body = bodies[names[page]]
        print(f"\n## {page} page ({names[page]}), {seconds} s per run, 1 uvicorn worker each")
        print(
            "| clients | segport req/s | bare req/s | req/s ratio | segport p50 ms | bare p50 ms "
            "| p50 ratio | segport p99 ms | bare p99 ms | p99 ratio | segport CPU ms/req "
            "| bare CPU ms/req | errors |"
        )
        print("| --- " * 13 + "|")
        for count in clients:
            ours = drive(segport, body, token, count, seconds, workdir)
            theirs = drive(bare, body, None, count, seconds, workdir)
            print(
                f"| {count} | {ours.rps:.0f} | {theirs.rps:.0f} | {ours.rps / theirs.rps:.2f} "
                f"| {ours.p50_ms:.1f} | {theirs.p50_ms:.1f} | {ours.p50_ms / theirs.p50_ms:.2f} "
                f"| {ours.p99_ms:.1f} | {theirs.p99_ms:.1f} | {ours.p99_ms / theirs.p99_ms:.2f} "
                f"| {ours.cpu_ms:.1f} | {theirs.cpu_ms:.1f} | {ours.errors}/{theirs.errors} |",
                flush=True,
            )


# -- subscriptions ------------------------------------------------------------------------


async def fan_out(
    server: Server, token: str | None, count: int, redis_url: str
) -> dict[str, float]:
    from redis.asyncio import Redis
    from websockets.asyncio.client import connect
    from websockets.typing import Subprotocol

    from service.coordination.events import run_to_bytes
    from service.domain import ExportRun, ExportRunStatus, ExportRunTrigger, RunCounts

    ws_url = server.url.replace("http://", "ws://")
    received: list[dict[int, float]] = [{} for _ in range(count)]
    ready = asyncio.Event()
    subscribed = 0
    stop = asyncio.Event()
    arrived: dict[int, int] = {}
    everyone = {event: asyncio.Event() for event in range(EVENTS)}

    async def subscriber(index: int) -> None:
        nonlocal subscribed
        protocol = Subprotocol("graphql-transport-ws")
        async with connect(ws_url, subprotocols=[protocol], max_size=None) as ws:
            init: dict[str, Any] = {"type": "connection_init"}
            if token:
                init["payload"] = {"Authorization": f"Bearer {token}"}
            await ws.send(json.dumps(init))
            await ws.recv()
            await ws.send(
                json.dumps(
                    {"id": "1", "type": "subscribe", "payload": {"query": api_seed.SUBSCRIPTION}}
                )
            )
            subscribed += 1
            if subscribed == count:
                ready.set()
            mine = received[index]
            while not stop.is_set():
                try:
                    raw = await asyncio.wait_for(ws.recv(), timeout=0.5)
                except TimeoutError:
                    continue
                message = json.loads(raw)
                if message.get("type") == "next":
                    sent = message["payload"]["data"]["exportRuns"]["counts"]["contactsSent"]
                    mine[sent] = time.perf_counter()
                    arrived[sent] = arrived.get(sent, 0) + 1
                    if arrived[sent] == count:
                        everyone[sent].set()
                elif message.get("type") == "error":
                    raise RuntimeError(message)

    rss_before = server.rss_mib()
    tasks = [asyncio.create_task(subscriber(i)) for i in range(count)]
    await asyncio.wait_for(ready.wait(), timeout=300)
    await asyncio.sleep(2)  # the last subscribe messages reach the server's listeners
    rss_idle = server.rss_mib()
    redis = Redis.from_url(redis_url)
    now = api_seed.EPOCH
    for event in range(EVENTS):
        run = ExportRun(
            id="run-live",
            export_id=api_seed.export_id(0),
            status=ExportRunStatus.RUNNING,
            trigger=ExportRunTrigger.ON_DEMAND,
            requested_by=None,
            queued_at=now,
            progress=event / EVENTS,
            counts=RunCounts(contacts_sent=event),
        )
        await redis.publish(CHANNEL, run_to_bytes(run))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(everyone[event].wait(), timeout=60)
    await redis.aclose()
    lags = []
    for event in range(EVENTS):
        times = [r[event] for r in received if event in r]
        if len(times) < count:
            raise RuntimeError(f"event {event} reached {len(times)} of {count} subscribers")
        lags.append(1000 * (max(times) - min(times)))
    rss_events = server.rss_mib()
    stop.set()
    await asyncio.gather(*tasks)
    await asyncio.sleep(3)
    rss_after = server.rss_mib()
    lags.sort()
    return {
        "lag_p50_ms": statistics.median(lags),
        "lag_p99_ms": lags[min(len(lags) - 1, round(0.99 * (len(lags) - 1)))],
        "kib_per_idle": 1024 * (rss_idle - rss_before) / count,
        "rss_before": rss_before,
        "rss_events": rss_events,
        "rss_after": rss_after,
    }


def subscription_table(
    segport: Server, bare: Server, token: str, counts: list[int], redis_url: str
) -> None:
    print(f"\n## exportRuns subscription fan-out, {EVENTS} events, through Redis pub/sub")
    print(
        "| subscribers | app | lag p50 ms | lag p99 ms | KiB per idle subscription "
        "| RSS before MiB | after events | after close | close vs before |"
    )
    print("| --- " * 9 + "|")
    for count in counts:
        for server, server_token in ((segport, token), (bare, None)):
            r = asyncio.run(fan_out(server, server_token, count, redis_url))
            print(
                f"| {count} | {server.name} | {r['lag_p50_ms']:.0f} | {r['lag_p99_ms']:.0f} "
                f"| {r['kib_per_idle']:.1f} | {r['rss_before']:.0f} | {r['rss_events']:.0f} "
                f"| {r['rss_after']:.0f} | {100 * (r['rss_after'] / r['rss_before'] - 1):+.0f} % |",
                flush=True,
            )


@contextlib.contextmanager
def redis_process() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait()


# -- main -----------------------------------------------------------------------------------


async def _seed(database: Path) -> str:
    from service.access.auth import mint_token
    from service.core import open_services
    from service.domain import Role
    from service.settings import Settings

    os.environ.update(settings_env(database, None))
    settings = Settings()
    async with open_services(settings) as services:
        await api_seed.seed(services.store)
    return mint_token(settings, "bench-admin", [Role.ADMIN])


def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(argv)
    if args.serve:
        serve(args)
        return
    if shutil.which("wrk") is None and not args.record_reference:
        sys.exit("bench/api_load.py needs wrk on PATH (apt-get install wrk)")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        database = workdir / "bench.db"
        token = asyncio.run(_seed(database))
        with started("segport", [], settings_env(database, None)) as segport:
            found = answers(segport.url, token)
        if args.record_reference:
            REFERENCE.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
            print(f"recorded {REFERENCE.name}")
            return
        reference = json.loads(REFERENCE.read_text())
        for name, answer in found.items():
            same = "identical to" if answer == reference[name] else "DIFFERENT FROM"
            print(f"segport's {name} answer is {same} the one recorded before issue 14")
        answers_file = workdir / "answers.json"
        answers_file.write_text(json.dumps({**found, "channel": CHANNEL}))
        print(
            f"load: {os.getloadavg()[0]:.2f} (1-minute load average before the run), "
            f"{os.cpu_count()} CPUs; segport served with PYTHONMALLOC={args.segport_allocator}"
        )
        with started("bare", ["--answers", str(answers_file)], {}) as bare:
            bare_found = answers(bare.url, None)
            for name in found:
                same = "identical" if bare_found[name] == found[name] else "DIFFERENT"
                print(f"the bare control's {name} answer: {same}")
            with started(
                "segport", [], settings_env(database, None, args.segport_allocator)
            ) as segport:
                load_table(
                    segport,
                    bare,
                    token,
                    args.pages.split(","),
                    [int(c) for c in args.clients.split(",")],
                    args.duration,
                    workdir,
                )
        if args.no_subscriptions:
            return
        with redis_process() as redis_url:
            extra = ["--answers", str(answers_file), "--redis-url", redis_url]
            with (
                started(
                    "segport", [], settings_env(database, redis_url, args.segport_allocator)
                ) as segport,
                started("bare", extra, {}) as bare,
            ):
                subscription_table(
                    segport, bare, token, [int(c) for c in args.subscribers.split(",")], redis_url
                )
        print(f"\nload after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
