"""Benchmark: export N profiles to the fake Constant Contact with its real limits.

    .venv/bin/python bench/export.py            # 1,000,000 profiles
    .venv/bin/python bench/export.py --rows 100000   # or -n / --profiles

Loads N profiles into a fresh SQLite store, then measures, in one process:

- the floor: read + map + encode + batch of the whole segment, no network;
- the export end to end (embedded mode: in-process queue, events, limiter)
  to a fake Constant Contact answering at 4 requests/s, 40,000 contacts and
  4 MB per request, and following every import activity to its end.

The fake runs in its own process, and so do the load, the floor and the export,
so each peak RSS printed is that phase's alone.

Prints wall time, profiles/s, peak RSS, requests made and the largest request.
Results are recorded in docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from segport_constant_contact import ConstantContact, ConstantContactSettings

from service.connections.credentials import seal_credentials
from service.coordination.events import follow_run
from service.core import Services, open_services
from service.domain import (
    Connection,
    ConnectionStatus,
    ConnectionUsableBy,
    Export,
    ExportRunTrigger,
    ExportSchedule,
    FieldMapping,
    Profile,
    Segment,
    new_id,
    utcnow,
)
from service.plugins import Destination, EncodedRecord, OAuthTokens, hookimpl
from service.plugins.batching import ContactBatcher
from service.runs.heap import FrozenHeap
from service.runs.mapping import RecordMapper
from service.runs.stages import YIELD_EVERY
from service.settings import Settings

LIST_ID = "8a2b3c4d-0000-4000-8000-00000000a001"
LOAD_CHUNK = 20_000


class Plugin:
    """Registers one destination object the benchmark made (no entry points)."""

    def __init__(self, destination: Destination) -> None:
        self.destination = destination

    @hookimpl
    def register_destinations(self) -> list[Destination]:
        return [self.destination]


@contextlib.contextmanager
def fake_process(module: str, *arguments: str) -> Iterator[tuple[str, int]]:
    """``python -m <module> --port N <arguments>`` (a plugin's fake server) on a free port,
    answering; yields its base URL and pid."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", module, "--port", str(port), *arguments],
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(f"{url}/__fake__/stats", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait()


@contextlib.contextmanager
def constant_contact_fake() -> Iterator[str]:
    """The fake Constant Contact with the real per-second limit and no daily one to speak
    of; yields its base URL."""
    with fake_process("segport_constant_contact.fake", "--requests-per-day", "1000000") as (
        url,
        _,
    ):
        yield url


def peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def seed_profiles(
    services: Services, count: int, *, email_domain: str = "example.com"
) -> Segment:
    """``count`` profiles (e-mail, first and last name) in one new segment."""
    now = utcnow()
    segment = Segment(
        id=new_id(), name="Everyone", description=None, created_at=now, updated_at=now
    )
    await services.store.save_segment(segment)
    for start in range(0, count, LOAD_CHUNK):
        chunk = [
            Profile(
                id=f"p{i:08d}",
                attributes={
                    "EmailAddress": f"person{i}@{email_domain}",
                    "FirstName": f"First{i}",
                    "LastName": f"Last{i}",
                },
                segment_ids=[segment.id],
            )
            for i in range(start, min(count, start + LOAD_CHUNK))
        ]
        await services.store.upsert_profiles(chunk)
    return segment


async def save_bench_export(
    services: Services,
    segment: Segment,
    destination_type: str,
    credentials: str,
    settings: dict[str, Any],
    mapping: list[tuple[str, str]],
) -> Export:
    """A connected connection with ``credentials`` and an export of ``segment`` through it."""
    now = utcnow()
    connection = Connection(
        id=new_id(),
        display_name="Bench",
        destination_type=destination_type,
        usable_by=ConnectionUsableBy.ADMINS,
        status=ConnectionStatus.CONNECTED,
        created_by="bench",
        created_at=now,
        updated_at=now,
        credentials=credentials,
    )
    await services.store.save_connection(connection)
    export = Export(
        id=new_id(),
        display_name="Bench export",
        connection_id=connection.id,
        destination_type=destination_type,
        settings=settings,
        field_mapping=[FieldMapping(source, target) for source, target in mapping],
        segment_ids=[segment.id],
        schedule=ExportSchedule(),
        created_by="bench",
        created_at=now,
        updated_at=now,
    )
    await services.store.save_export(export)
    return export


async def load(services: Services, fake_url: str, count: int) -> Export:
    segment = await seed_profiles(services, count)
    async with httpx.AsyncClient() as http:
        answer = (await http.post(f"{fake_url}/__fake__/tokens")).json()
    tokens = OAuthTokens(
        access_token=answer["access_token"], refresh_token=answer.get("refresh_token")
    )
    return await save_bench_export(
        services,
        segment,
        "constant_contact",
        seal_credentials(services.cipher, tokens=tokens),
        {"listId": LIST_ID},
        [("EmailAddress", "email"), ("FirstName", "first_name"), ("LastName", "last_name")],
    )


async def floor(
    services: Services, export: Export, destination: ConstantContact
) -> tuple[float, int]:
    """Read + map + encode + batch the whole segment without sending; returns (seconds, batches)."""
    started = time.perf_counter()
    # As a run does: the segment's (maintained) member count sizes the mapper's key set.
    expected = await services.store.count_segment_members(export.segment_ids)
    envelope = destination.batch_envelope_size(export.settings)
    batcher = ContactBatcher(destination.limits, envelope)
    batches = 0
    # As a run streams: the objects from before it left out of full collections.
    with (
        FrozenHeap().held(),
        RecordMapper(
            destination, export.field_mapping, envelope_size=envelope, expected=expected
        ) as mapper,
    ):
        async for profiles in services.store.iter_segment_members(
            export.segment_ids, batch_size=services.settings.run_read_batch_size
        ):
            # As the run maps them: in chunks of YIELD_EVERY, keys taken a chunk at once.
            for start in range(0, len(profiles), YIELD_EVERY):
                for out, _ in mapper.map_many(profiles[start : start + YIELD_EVERY]):
                    if isinstance(out, EncodedRecord) and batcher.add(out) is not None:
                        batches += 1
    if batcher.flush() is not None:
        batches += 1
    return time.perf_counter() - started, batches


def _settings(database: Path) -> Settings:
    return Settings(
        database_url=f"sqlite:///{database}",
        jwt_secret="bench-secret-bench-secret-bench-secret-0123",  # type: ignore[arg-type]
        encryption_key="zCVq5b7kFBUuiXfpLYIiqJB2c8Ju1pZmbWTqpS6Y67E=",  # type: ignore[arg-type]
    )


def _destination(fake_url: str) -> ConstantContact:
    return ConstantContact(
        ConstantContactSettings(
            client_id="fake-client-id",
            client_secret="fake-client-secret",
            api_base_url=f"{fake_url}/v3",
            auth_base_url=fake_url,
        )
    )


async def phase(name: str, database: Path, fake_url: str, count: int) -> dict[str, Any]:
    """One phase in this process, so that its peak RSS is its own."""
    destination = _destination(fake_url)
    async with open_services(
        _settings(database), extra_plugins=[Plugin(destination)], load_entry_points=False
    ) as services:
        started = time.perf_counter()
        if name == "load":
            export = await load(services, fake_url, count)
            return {"export_id": export.id, "load_seconds": round(time.perf_counter() - started, 1)}
        page = await services.store.list_exports(first=1)
        export = page.items[0]
        if name == "floor":
            floor_seconds, floor_batches = await floor(services, export, destination)
            return {
                "floor_seconds": round(floor_seconds, 2),
                "floor_profiles_per_second": round(count / floor_seconds),
                "floor_batches": floor_batches,
                "floor_peak_rss_mb": round(peak_rss_mb(), 1),
            }
        run = await services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "bench")
        last = run
        async for state in follow_run(services.store, services.events, run.id):
            last = state
        wall = time.perf_counter() - started
        stats = (await services.http.get(f"{fake_url}/__fake__/stats")).json()
        return {
            "status": str(last.status),
            "message": last.message,
            "wall_seconds": round(wall, 2),
            "profiles_per_second": round(count / wall),
            "contacts_sent": last.counts.contacts_sent,
            "accepted": last.counts.accepted_by_destination,
            "list_members": stats["lists"][LIST_ID]["members"],
            "requests": stats["requests"],
            "answers_by_status": stats["statuses"],
            "max_requests_in_one_second": stats["max_requests_in_one_second"],
            "largest_request_bytes": stats["largest_body_bytes"],
            "most_contacts_in_a_request": stats["most_records"],
            "truncated_imports": stats["truncated_imports"],
            "peak_rss_mb": round(peak_rss_mb(), 1),
        }


def run_phase(
    name: str, database: Path, fake_url: str, count: int, profile_to: Path | None = None
) -> dict[str, Any]:
    """Run ``name`` in a child process of this script and return what it printed; with
    ``profile_to``, under ``py-spy record`` (idle threads included), its samples written
    there as ``<name>.txt`` (collapsed stacks)."""
    command = [sys.executable, __file__, "--phase", name, "--database", str(database),
               "--fake-url", fake_url, "-n", str(count)]  # fmt: skip
    if profile_to is not None:
        samples = str(profile_to / f"{name}.txt")
        spy = str(Path(sys.executable).with_name("py-spy"))
        command = [spy, "record", "--idle", "--format", "raw", "-o", samples, "--", *command]
    output = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout
    # The phase's figures are its last JSON line (py-spy prints its own lines after it).
    return dict(json.loads([line for line in output.splitlines() if line.startswith("{")][-1]))


def bench(count: int, profile_to: Path | None = None) -> dict[str, Any]:
    """Load, floor and export, each in its own process, against one fake server; the
    floor and the export under py-spy when ``profile_to`` is given."""
    with tempfile.TemporaryDirectory() as folder, constant_contact_fake() as fake_url:
        database = Path(folder) / "bench.db"
        result: dict[str, Any] = {"profiles": count}
        for name in ("load", "floor", "export"):
            result.update(
                run_phase(name, database, fake_url, count, None if name == "load" else profile_to)
            )
        return result


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """The options; the row count takes the same names as in bench/import_profiles.py."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-n",
        "--rows",
        "--profiles",
        dest="profiles",
        type=int,
        default=1_000_000,
        help="profiles to load and export (default 1,000,000)",
    )
    parser.add_argument(
        "--py-spy",
        dest="profile_to",
        type=Path,
        help="folder for py-spy profiles of the floor and the export (pip install py-spy); "
        "the figures of a profiled run are not comparable with others",
    )
    parser.add_argument("--phase", choices=["load", "floor", "export"], help=argparse.SUPPRESS)
    parser.add_argument("--database", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--fake-url", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    if args.phase:
        print(
            json.dumps(asyncio.run(phase(args.phase, args.database, args.fake_url, args.profiles)))
        )
        return 0
    if args.profile_to is not None:
        args.profile_to.mkdir(parents=True, exist_ok=True)
    result = bench(args.profiles, args.profile_to)
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    return 0 if result["status"] == "SUCCEEDED" else 1


if __name__ == "__main__":
    sys.exit(main())
