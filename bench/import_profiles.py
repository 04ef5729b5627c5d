"""Benchmark: ``segport import profiles`` of a generated JSON Lines file into SQLite.

Run by hand or with ``make bench``; never part of the test suite. Prints rows/s.

    .venv/bin/python bench/import_profiles.py [--rows 100000] [--batch-size 1000]

``--rows`` is also ``-n`` or ``--profiles``, as in bench/export.py.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import orjson

from service.settings import Settings
from service.store import open_store
from service.store.importer import ProfileImporter

SEGMENTS = ["Newsletter", "VIP", "Spring sale", "Lapsed"]


def write_profiles(path: Path, rows: int) -> None:
    with path.open("wb") as out:
        for n in range(rows):
            profile = {
                "id": f"profile-{n:08}",
                "attributes": {
                    "EmailAddress": f"person{n}@example.com",
                    "FirstName": f"First{n}",
                    "LastName": f"Last{n}",
                    "City": "Lyon" if n % 2 else "Porto",
                    "LoyaltyPoints": n % 1000,
                },
                "segments": [SEGMENTS[n % len(SEGMENTS)], SEGMENTS[(n // 7) % len(SEGMENTS)]],
            }
            out.write(orjson.dumps(profile) + b"\n")


async def import_file(path: Path, database: Path, batch_size: int) -> tuple[int, float]:
    store = await open_store(Settings(database_url=f"sqlite:///{database}"))
    try:
        started = time.perf_counter()
        summary = await ProfileImporter(store, batch_size=batch_size).import_file(path)
        elapsed = time.perf_counter() - started
    finally:
        await store.close()
    assert summary.rejected == 0, summary.rejections
    return summary.upserted, elapsed


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """The options; the row count takes the same names as in bench/export.py."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-n",
        "--rows",
        "--profiles",
        dest="rows",
        type=int,
        default=100_000,
        help="profiles to generate and import (default 100,000)",
    )
    parser.add_argument("--batch-size", type=int, default=1000)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(argv)
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "profiles.jsonl"
        write_profiles(source, args.rows)
        size_mb = source.stat().st_size / 1e6
        upserted, elapsed = import_file_sync(source, Path(folder) / "bench.db", args.batch_size)
    print(
        f"import profiles: {upserted} rows ({size_mb:.1f} MB JSON Lines) into SQLite "
        f"in {elapsed:.2f} s = {upserted / elapsed:,.0f} rows/s (batch size {args.batch_size})"
    )


def import_file_sync(path: Path, database: Path, batch_size: int) -> tuple[int, float]:
    return asyncio.run(import_file(path, database, batch_size))


if __name__ == "__main__":
    main()
