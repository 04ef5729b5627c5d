"""Large blocks go back to the system when freed (glibc's mapping threshold fixed).

glibc raises its mapping threshold each time a mapped block is freed, after which
blocks under that size come from the heap and freed ones stay there; a run frees large
blocks all the time (request bodies, lists of a batch's records).
:func:`~service.observability.collector.map_large_blocks` fixes the threshold, and
every segport process sets it when its services open.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from service.core import open_services
from tests.support.settings import make_settings

KEPT = """
import sys
from service.observability.collector import map_large_blocks

def resident():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096

if sys.argv[1] == "fixed":
    assert map_large_blocks()
freed = b"x" * (16 << 20)
del freed  # a mapped block freed: by default glibc raises its threshold to its size
before = resident()
block = b"x" * (8 << 20)  # under the raised threshold: from the heap, unless fixed
later = b"y" * (256 << 10)  # a later heap block, so the heap cannot simply shrink
del block
print((resident() - before) >> 20)
"""


def kept_mib(threshold: str) -> int:
    """MiB still resident after an 8 MiB block was freed, in a fresh interpreter."""
    run = subprocess.run(
        [sys.executable, "-c", KEPT, threshold], check=True, capture_output=True, text=True
    )
    return int(run.stdout)


def test_freed_large_blocks_leave_the_process() -> None:
    assert kept_mib("default") >= 7  # what the fixed threshold is for
    assert kept_mib("fixed") <= 1  # this machine's (and CI's) C library is glibc


async def test_opening_the_services_sets_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def record() -> bool:
        calls.append("set")
        return True

    monkeypatch.setattr("service.core.map_large_blocks", record)
    settings = make_settings(f"sqlite:///{tmp_path / 'segport.db'}")
    async with open_services(settings, load_entry_points=False):
        assert calls == ["set"]
