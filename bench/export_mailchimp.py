"""Benchmark: export N profiles to the fake Mailchimp, 150 ms per call, 10 in flight.

    .venv/bin/python bench/export_mailchimp.py                  # 100,000 profiles
    .venv/bin/python bench/export_mailchimp.py --rows 20000     # or -n / --profiles

Loads N profiles into a fresh SQLite store, then runs the export end to end in
embedded mode (in-process queue, events, limiter) to a fake Mailchimp in its own
process that answers every call after ``--latency`` seconds (default 0.15) and
refuses an eleventh request in flight per key with 429. Batches are 500 members, so
the floor is ``ceil(N / 500)`` calls at 10 in flight: ``ceil(N / 5000) * latency``
seconds (3.0 s for 100,000). The target is the export within 1.3 times the floor,
never more than 10 requests in flight.

Prints the load time, the export's wall time and its ratio to the floor, the fake's
counts (requests, peak in flight, 429s for the cap), the CPU time the service and the
fake spent during the export (per profile too: on a shared machine, a figure that the
other sessions' load does not inflate as much as the wall time), the load average and
the peak RSS. Results are
recorded in docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from export import Plugin, fake_process, peak_rss_mb, save_bench_export, seed_profiles
from segport_mailchimp import Mailchimp, MailchimpSettings
from segport_mailchimp.fake import DEMO_API_KEY, NEWSLETTER_LIST_ID

from service.connections.credentials import seal_credentials
from service.coordination.events import follow_run
from service.core import Services, open_services
from service.domain import (
    Export,
    ExportRunTrigger,
)
from service.settings import Settings

MEMBERS_PER_CALL = 500
IN_FLIGHT = 10


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user and system) process ``pid`` has used so far; None off Linux."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def load(services: Services, count: int) -> Export:
    segment = await seed_profiles(services, count, email_domain="shop.example")
    return await save_bench_export(
        services,
        segment,
        "mailchimp",
        seal_credentials(services.cipher, secrets={"apiKey": DEMO_API_KEY}),
        {"listId": NEWSLETTER_LIST_ID, "statusIfNew": "subscribed"},
        [("EmailAddress", "email_address"), ("FirstName", "FNAME"), ("LastName", "LNAME")],
    )


def _settings(database: Path) -> Settings:
    return Settings(
        database_url=f"sqlite:///{database}",
        jwt_secret="bench-secret-bench-secret-bench-secret-0123",  # type: ignore[arg-type]
        encryption_key="zCVq5b7kFBUuiXfpLYIiqJB2c8Ju1pZmbWTqpS6Y67E=",  # type: ignore[arg-type]
    )


async def bench(count: int, latency: float) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory() as folder,
        fake_process("segport_mailchimp.fake", "--latency", str(latency)) as (
            fake_url,
            fake_pid,
        ),
    ):
        destination = Mailchimp(MailchimpSettings(api_base_url=f"{fake_url}/{{dc}}/3.0"))
        async with open_services(
            _settings(Path(folder) / "bench.db"),
            extra_plugins=[Plugin(destination)],
            load_entry_points=False,
        ) as services:
            started = time.perf_counter()
            export = await load(services, count)
            loaded = time.perf_counter() - started
            started = time.perf_counter()
            service_cpu, fake_cpu = time.process_time(), cpu_seconds(fake_pid)
            run = await services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "bench")
            last = run
            async for state in follow_run(services.store, services.events, run.id):
                last = state
            wall = time.perf_counter() - started
            service_cpu = time.process_time() - service_cpu
            fake_after = cpu_seconds(fake_pid)
            fake_cpu = None if fake_cpu is None or fake_after is None else fake_after - fake_cpu
            load_average = os.getloadavg()[0]
            stats = (await services.http.get(f"{fake_url}/__fake__/stats")).json()
    calls = math.ceil(count / MEMBERS_PER_CALL)
    floor = math.ceil(calls / IN_FLIGHT) * latency
    return {
        "profiles": count,
        "status": str(last.status),
        "message": last.message,
        "load_seconds": round(loaded, 2),
        "floor_seconds": round(floor, 2),
        "wall_seconds": round(wall, 2),
        "ratio_to_floor": round(wall / floor, 2) if floor else None,
        "target_ratio": 1.3,
        "profiles_per_second": round(count / wall),
        "accepted": last.counts.accepted_by_destination,
        "audience_members": stats["members"][NEWSLETTER_LIST_ID],
        "requests": stats["requests"],
        "peak_in_flight": stats["peak_in_flight"].get(DEMO_API_KEY, 0),
        "over_cap_429s": stats["over_cap_refusals"],
        "service_cpu_seconds": round(service_cpu, 2),
        "service_cpu_us_per_profile": round(service_cpu / count * 1e6, 1),
        "fake_cpu_seconds": None if fake_cpu is None else round(fake_cpu, 2),
        "fake_cpu_us_per_profile": None if fake_cpu is None else round(fake_cpu / count * 1e6, 1),
        "load_average_1min_at_end": round(load_average, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """The options; the row count takes the same names as in the other benchmarks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-n",
        "--rows",
        "--profiles",
        dest="profiles",
        type=int,
        default=100_000,
        help="profiles to load and export (default 100,000)",
    )
    parser.add_argument("--latency", type=float, default=0.15, help="seconds per call (0.15)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    result = asyncio.run(bench(args.profiles, args.latency))
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    return 0 if result["status"] == "SUCCEEDED" else 1


if __name__ == "__main__":
    sys.exit(main())
