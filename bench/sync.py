"""Benchmark: sync modes over N profiles against the fake Constant Contact (real limits).

    .venv/bin/python bench/sync.py                 # 1,000,000 profiles
    .venv/bin/python bench/sync.py --rows 100000   # or -n / --profiles

In a fresh SQLite store and one fake Constant Contact (each phase in its own
process, so each peak RSS is that phase's own):

1. load N profiles; an export (SEND_CHANGES) of them;
2. the floor: read + map + encode + fingerprint the whole segment, no network;
3. a first run, which sends everything and fills the ledger (the ledger's size is
   printed);
4. 1 % of the profiles change; ``previewExport`` (timed, against the floor);
5. a SEND_CHANGES run (timed; its import requests counted);
6. another 1 % leave the segment; the export becomes MIRROR; a run (timed; every request
   it makes is removal-related, counted by path).

Results are recorded in docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from export import (
    LIST_ID,
    Plugin,
    _destination,
    _settings,
    constant_contact_fake,
    load,
    peak_rss_mb,
)
from segport_constant_contact import ConstantContact

from service.core import Services, open_services
from service.domain import Export, ExportRunTrigger, Profile, SyncMode
from service.plugins import EncodedRecord
from service.runs.heap import FrozenHeap
from service.runs.mapping import RecordMapper
from service.runs.preview import preview_export
from service.runs.sync import YIELD_EVERY, fingerprint

IMPORT_PATH = "/v3/activities/contacts_json_import"
PHASES = ("load", "floor", "first", "preview", "changes", "mirror")
CHUNK = 20_000


async def floor(services: Services, export: Export, destination: ConstantContact) -> float:
    """Read + map + encode + fingerprint the whole segment, sending nothing."""
    started = time.perf_counter()
    # As a run does: the segment's (maintained) member count sizes the mapper's key set.
    expected = await services.store.count_segment_members(export.segment_ids)
    envelope = destination.batch_envelope_size(export.settings)
    # As a run streams: the objects from before it out of full collections, young passes
    # spaced (service/runs/heap.py).
    with (
        FrozenHeap().held(),
        RecordMapper(
            destination, export.field_mapping, envelope_size=envelope, expected=expected
        ) as mapper,
    ):
        async for profiles in services.store.iter_segment_members(
            export.segment_ids, batch_size=services.settings.run_read_batch_size
        ):
            # As the run maps them: in chunks, the chunk's keys taken at once.
            for start in range(0, len(profiles), YIELD_EVERY):
                for out, _ in mapper.map_many(profiles[start : start + YIELD_EVERY]):
                    if isinstance(out, EncodedRecord):
                        fingerprint(out.encoded)
    return time.perf_counter() - started


async def run(services: Services, export: Export) -> tuple[dict[str, Any], float]:
    started = time.perf_counter()
    requested = await services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "bench")
    while True:
        current = await services.store.get_run(requested.id)
        assert current is not None
        if current.status.is_terminal:
            break
        await asyncio.sleep(0.2)
    wall = time.perf_counter() - started
    c = current.counts
    counts = {
        "status": str(current.status),
        "message": current.message,
        "read": c.profiles_read,
        "sent": c.contacts_sent,
        "unchanged": c.skipped_unchanged,
        "accepted": c.accepted_by_destination,
        "removed": c.removed_from_list,
        "removals_failed": c.removals_failed,
    }
    return counts, wall


IDS = re.compile(r"/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


async def requests_by_path(services: Services, fake_url: str) -> Counter[str]:
    """Requests the fake logged, by method and path (ids in paths as ``{id}``)."""
    log = (await services.http.get(f"{fake_url}/__fake__/requests")).json()
    return Counter(f"{e['method']} {IDS.sub('/{id}', e['path'])}" for e in log["requests"])


async def change(services: Services, export: Export, numbers: range, *, leave: bool) -> None:
    segment_ids = [] if leave else list(export.segment_ids)
    for start in range(numbers.start, numbers.stop, CHUNK):
        chunk = [
            Profile(
                id=f"p{i:08d}",
                attributes={
                    "EmailAddress": f"person{i}@example.com",
                    "FirstName": f"Changed{i}",
                    "LastName": f"Last{i}",
                },
                segment_ids=segment_ids,
            )
            for i in range(start, min(numbers.stop, start + CHUNK))
        ]
        await services.store.upsert_profiles(chunk)


def ledger_megabytes(database: Path) -> float | None:
    with sqlite3.connect(database) as db:
        try:
            row = db.execute(
                "SELECT SUM(pgsize) FROM dbstat WHERE name = 'ledger_entries'"
            ).fetchone()
        except sqlite3.OperationalError:
            return None  # SQLite built without the dbstat table
    return None if row is None or row[0] is None else round(row[0] / 2**20, 1)


async def phase(name: str, database: Path, fake_url: str, count: int) -> dict[str, Any]:
    destination = _destination(fake_url)
    async with open_services(
        _settings(database), extra_plugins=[Plugin(destination)], load_entry_points=False
    ) as services:
        if name == "load":
            started = time.perf_counter()
            export = await load(services, fake_url, count)
            export.sync_mode = SyncMode.SEND_CHANGES
            await services.store.save_export(export)
            return {"load_seconds": round(time.perf_counter() - started, 1)}
        export = (await services.store.list_exports(first=1)).items[0]
        if name == "floor":
            seconds = await floor(services, export, destination)
            return {
                "floor_seconds": round(seconds, 2),
                "floor_peak_rss_mb": round(peak_rss_mb(), 1),
            }
        if name == "first":
            counts, wall = await run(services, export)
            return {
                "first_run": counts,
                "first_run_seconds": round(wall, 1),
                "ledger_entries": await services.store.count_ledger(export.id),
                "ledger_mb": ledger_megabytes(database),
            }
        one_percent = max(1, count // 100)
        if name == "preview":
            await change(services, export, range(0, one_percent), leave=False)
            started = time.perf_counter()
            preview = await preview_export(services.run_context, export)
            return {
                "preview": {
                    "to_add": preview.to_add,
                    "to_update": preview.to_update,
                    "unchanged": preview.unchanged,
                },
                "preview_seconds": round(time.perf_counter() - started, 2),
                "preview_peak_rss_mb": round(peak_rss_mb(), 1),
                # The helper process that walked half of it (0: none did).
                "preview_helper_peak_rss_mb": round(children_peak_rss_mb(), 1),
            }
        if name == "changes":
            before = await requests_by_path(services, fake_url)
            changes, changes_wall = await run(services, export)
            after = await requests_by_path(services, fake_url)
            return {
                "changes_run": changes,
                "changes_run_seconds": round(changes_wall, 2),
                "changes_import_requests": after[f"POST {IMPORT_PATH}"]
                - before[f"POST {IMPORT_PATH}"],
                "changes_peak_rss_mb": round(peak_rss_mb(), 1),
                # The helper process that walked its second half (0: none did).
                "changes_helper_peak_rss_mb": round(children_peak_rss_mb(), 1),
            }
        await change(services, export, range(count - one_percent, count), leave=True)
        export.sync_mode = SyncMode.MIRROR
        await services.store.save_export(export)
        before = await requests_by_path(services, fake_url)
        mirror, mirror_wall = await run(services, export)
        after = await requests_by_path(services, fake_url)
        stats = (await services.http.get(f"{fake_url}/__fake__/stats")).json()
        return {
            "mirror_run": mirror,
            "mirror_run_seconds": round(mirror_wall, 2),
            "mirror_requests": dict(after - before),
            "mirror_request_count": sum((after - before).values()),
            "list_members_after": stats["lists"][LIST_ID]["members"],
            "mirror_peak_rss_mb": round(peak_rss_mb(), 1),
        }


def children_peak_rss_mb() -> float:
    """The largest peak RSS of this process's finished children (ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def run_phase(name: str, database: Path, fake_url: str, count: int) -> dict[str, Any]:
    # SEGPORT_BENCH_PROFILE=preview,changes records those phases with py-spy (collapsed
    # stacks written in the working directory as sync-<phase>.txt).
    profiled = os.environ.get("SEGPORT_BENCH_PROFILE", "").split(",")
    spy = ["py-spy", "record", "-f", "raw", "-o", f"sync-{name}.txt", "--"]
    spy = spy if name in profiled else []
    output = subprocess.run(
        [*spy, sys.executable, __file__, "--phase", name, "--database", str(database),
         "--fake-url", fake_url, "-n", str(count)],
        check=True, stdout=subprocess.PIPE, text=True,
    ).stdout  # fmt: skip
    if logs := os.environ.get("SEGPORT_BENCH_LOGS"):  # a folder for each phase's output
        (Path(logs) / f"sync-{name}.log").write_text(output)
    last = [line for line in output.strip().splitlines() if line.startswith("{")][-1]
    return dict(json.loads(last))


def bench(count: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder, constant_contact_fake() as fake_url:
        database = Path(folder) / "bench.db"
        result: dict[str, Any] = {"profiles": count}
        for name in PHASES:
            result.update(run_phase(name, database, fake_url, count))
        floor_seconds = result["floor_seconds"]
        result["changes_run_over_floor"] = round(result["changes_run_seconds"] / floor_seconds, 2)
        result["preview_over_floor"] = round(result["preview_seconds"] / floor_seconds, 2)
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--rows", "--profiles", dest="profiles", type=int,
                        default=1_000_000, help="profiles (default 1,000,000)")  # fmt: skip
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    parser.add_argument("--database", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--fake-url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase:
        outcome = asyncio.run(phase(args.phase, args.database, args.fake_url, args.profiles))
        print(json.dumps(outcome))
        return 0
    result = bench(args.profiles)
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
