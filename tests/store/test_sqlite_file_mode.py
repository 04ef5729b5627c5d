"""The SQLite file holds customer e-mails: it and its -wal and -shm files are its owner's only
(mode 0600, like the secrets directory), whatever the umask lets through."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.domain import Profile
from service.store.sqlite import SQLiteStore

PERMISSIVE_UMASK = 0o022
"""The usual umask, under which files are created 0644 unless asked otherwise."""


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    previous = os.umask(PERMISSIVE_UMASK)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("permissive_umask")
async def test_a_new_database_and_its_wal_and_shm_files_are_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "data" / "segport.db"
    store = SQLiteStore(path, write_batch_size=10)
    await store.open()
    try:
        await store.upsert_profiles([Profile("p1", {"email": "ann@example.com"}, [])])
        files = {
            name: _mode(tmp_path / "data" / name)
            for name in ("segport.db", "segport.db-wal", "segport.db-shm")
        }
    finally:
        await store.close()
    assert files == {"segport.db": 0o600, "segport.db-wal": 0o600, "segport.db-shm": 0o600}


@pytest.mark.usefixtures("permissive_umask")
async def test_a_reopened_database_keeps_its_data_and_its_owner_only_mode(tmp_path: Path) -> None:
    path = tmp_path / "segport.db"
    first = SQLiteStore(path, write_batch_size=10)
    await first.open()
    await first.upsert_profiles([Profile("p1", {"email": "ann@example.com"}, [])])
    await first.close()

    again = SQLiteStore(path, write_batch_size=10)
    await again.open()
    try:
        assert await again.get_profile("p1") == Profile("p1", {"email": "ann@example.com"}, [])
    finally:
        await again.close()
    assert _mode(path) == 0o600
