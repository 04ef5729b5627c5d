"""The SQLite file's connections: a writer thread, reader threads for long reads, and a
reader on the event loop for short lookups.

Every write transaction passes through the *writer* (so writes never
interleave); long reads (a run streaming a segment's profiles, the ledger's
pages) go to the *reader* threads (:data:`READER_THREADS`), the one with the
fewest calls waiting (WAL lets them read while the writer writes).
Each call hands one whole function to a connection's thread, so a
transaction never spans an ``await`` and never sees another coroutine's
half-done work.

Short, bounded reads (records by id, a page of records, a few counts: what
the API's pages ask) run on the *loop reader* instead, in the calling
thread: each takes well under a millisecond of SQLite's time, and handing it
to a thread and back (a future, a wake-up of the loop, the GIL changing hands
at every row) cost about as much as the query. So one request's reads no
longer each cross a thread boundary. A lookup runs to completion without
yielding, so it cannot interleave with another coroutine either.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from service.store.sqlite.schema import create_schema

T = TypeVar("T")

FILE_MODE = 0o600
"""The database holds customer e-mails: readable by its owner only, like the secrets. SQLite
gives the -wal and -shm files it creates beside it the database file's permissions."""

Work = Callable[[sqlite3.Connection], T]
"""What runs on a connection's thread: one function of the connection."""


def connect(path: Path, *, read_only: bool, cache_kib: int) -> sqlite3.Connection:
    """A connection to ``path`` in WAL mode, set up for writing or for reading, with a
    page cache of ``cache_kib`` (see :data:`WRITER_CACHE_KIB` and the readers')."""
    # isolation_level=None: transactions are our own BEGIN .. COMMIT.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 10000")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute(f"PRAGMA cache_size = -{int(cache_kib)}")
    if read_only:
        conn.execute("PRAGMA query_only = ON")
    return conn


WRITER_CACHE_KIB = 16 * 1024
"""The writer's page cache. Bulk upserts touch index pages all over the file: keep some
in memory. Not more: a run's checkpoints and its ledger journal go through this
connection too, and their clean pages stayed cached (64 MiB put a 1M export's peak at
295 MB, 16 MiB at 196 MB; 100,000 imported profiles take 1.27 s instead of 1.18 s)."""
SCAN_CACHE_KIB = 1024
"""The reader threads' page cache. Their reads are mostly long sequential range scans (a
run streaming a segment): a big cache would not be reused, only fill up as the segment
grows (with 8 MiB, a 1M export peaked 6 MB higher than with 1 MiB, and was no faster);
the operating system's file cache serves re-reads."""
LOOKUP_CACHE_KIB = 8 * 1024
"""The loop reader's page cache: its short look-ups (pages of exports, runs, segments)
come back to the same pages."""


READER_THREADS = 1
"""Reader threads for long reads. Measured on two cores (docs/performance.md): one, two
or three threads streamed one, two or four segments at once at the same rate within the
machine's noise, since decoding the rows on the event loop is the bound, not SQLite; and
the API's reads no longer queue behind a run's batches (they are lookups). Raise it where
SQLite's own work (cold files, large scans) is what waits."""


class DatabaseThread:
    """One sqlite3 connection, used only from its own thread."""

    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._conn: sqlite3.Connection | None = None
        self.in_flight = 0
        """Calls handed to the thread and not yet answered."""

    async def open(self, path: Path, *, read_only: bool, cache_kib: int) -> None:
        def open_here() -> None:
            self._conn = connect(path, read_only=read_only, cache_kib=cache_kib)

        await asyncio.get_running_loop().run_in_executor(self._executor, open_here)

    async def call(self, fn: Work[T]) -> T:
        def job() -> T:
            if self._conn is None:
                raise RuntimeError("the SQLite store is not open (call open() first)")
            return fn(self._conn)

        self.in_flight += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, job)
        finally:
            self.in_flight -= 1

    async def close(self) -> None:
        def disconnect() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._executor, disconnect)
        self._executor.shutdown(wait=True)


def in_transaction(fn: Work[T]) -> Work[T]:
    """``fn`` wrapped in BEGIN IMMEDIATE .. COMMIT (ROLLBACK on any error)."""

    def run(conn: sqlite3.Connection) -> T:
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    return run


def in_snapshot(fn: Work[T]) -> Work[T]:
    """``fn`` inside one read transaction, so a page and its total agree."""

    def run(conn: sqlite3.Connection) -> T:
        conn.execute("BEGIN")
        try:
            return fn(conn)
        finally:
            conn.execute("COMMIT")

    return run


class SQLiteDatabase:
    """One SQLite file in WAL mode, through its writer and reader threads and the loop reader."""

    def __init__(self, path: Path, readers: int = READER_THREADS) -> None:
        self.path = Path(path)
        self._writer = DatabaseThread("segport-sqlite-writer")
        self._readers = [DatabaseThread(f"segport-sqlite-reader-{n}") for n in range(readers)]
        self._loop_reader: sqlite3.Connection | None = None
        self._opened = False

    async def open(self) -> None:
        """Open both connections, making the file and its schema when missing (idempotent)."""
        if self._opened:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _create_private(self.path)
        await self._writer.open(self.path, read_only=False, cache_kib=WRITER_CACHE_KIB)
        await self._writer.call(create_schema)
        for reader in self._readers:
            await reader.open(self.path, read_only=True, cache_kib=SCAN_CACHE_KIB)
        self._loop_reader = connect(self.path, read_only=True, cache_kib=LOOKUP_CACHE_KIB)
        self._opened = True

    async def close(self) -> None:
        if not self._opened:
            return
        self._opened = False
        if self._loop_reader is not None:
            self._loop_reader.close()
            self._loop_reader = None
        for reader in self._readers:
            await reader.close()
        await self._writer.close()

    async def read(self, fn: Work[T]) -> T:
        """``fn`` on a reader thread (one statement sees one state of the file)."""
        return await self._idlest_reader().call(fn)

    async def read_snapshot(self, fn: Work[T]) -> T:
        """``fn`` on a reader thread, all its statements in one read transaction."""
        return await self._idlest_reader().call(in_snapshot(fn))

    def _idlest_reader(self) -> DatabaseThread:
        return min(self._readers, key=lambda reader: reader.in_flight)

    async def lookup(self, fn: Work[T]) -> T:
        """``fn`` on the loop reader, here and now: only for short, bounded reads (module doc)."""
        return self._lookup(fn)

    async def lookup_snapshot(self, fn: Work[T]) -> T:
        """``fn`` on the loop reader, all its statements in one read transaction."""
        return self._lookup(in_snapshot(fn))

    def _lookup(self, fn: Work[T]) -> T:
        if self._loop_reader is None:
            raise RuntimeError("the SQLite store is not open (call open() first)")
        return fn(self._loop_reader)

    async def write(self, fn: Work[T]) -> T:
        """``fn`` on the writer, in one write transaction."""
        return await self._writer.call(in_transaction(fn))

    async def release_writer_cache(self) -> None:
        """Let go of the writer's cached pages (``PRAGMA shrink_memory``): after writes that
        nothing reads back soon, such as a run's ledger journal, which would otherwise fill
        the page cache (16 MiB) in proportion to the run's size."""
        await self._writer.call(lambda conn: conn.execute("PRAGMA shrink_memory").close())


def _create_private(path: Path) -> None:
    """Make ``path`` an empty file (an empty SQLite database) of :data:`FILE_MODE` unless it
    exists, so SQLite never creates it with the umask's permissions (usually 0644)."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    os.close(descriptor)
