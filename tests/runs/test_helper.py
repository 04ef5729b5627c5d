"""service.runs.helper: a call in a new interpreter, its answer back, cancellable."""

from __future__ import annotations

import asyncio
import hashlib
import os
import pickle
from collections.abc import AsyncGenerator
from contextlib import suppress
from pathlib import Path
from typing import cast

import pytest

from service.runs.helper import (
    Done,
    HelperFailed,
    PackedTexts,
    Spool,
    helper_messages,
    in_helper_process,
)
from tests.support import helper_work


async def test_a_call_runs_in_another_process_and_its_answer_comes_back() -> None:
    assert await in_helper_process(helper_work.add, 2, 40) == 42  # the print went to stderr


async def test_large_buffers_of_a_call_reach_the_helper_whole() -> None:
    # Buffers travel beside the call's pickle, in 1 MiB writes: sizes that are not.
    buffers = [bytearray(os.urandom(3 * 2**20 + 17)), bytearray(), bytearray(b"x" * 2**20)]

    told = await in_helper_process(helper_work.digests, *buffers)

    assert told == [hashlib.sha256(buffer).hexdigest() for buffer in buffers]


async def test_an_exception_in_the_helper_is_told_with_its_words() -> None:
    with pytest.raises(HelperFailed, match="ValueError: no such thing as 'x'"):
        await in_helper_process(helper_work.refuse, "x")


async def test_a_helper_that_dies_without_an_answer_fails() -> None:
    with pytest.raises(HelperFailed, match="exit status 3"):
        await in_helper_process(helper_work.leave)


async def test_cancelling_the_call_kills_the_helper(tmp_path: Path) -> None:
    pid_file = tmp_path / "helper.pid"
    call = asyncio.create_task(in_helper_process(helper_work.wait_forever, pid_file))
    for _ in range(600):
        if pid_file.exists() and pid_file.read_text():
            break
        await asyncio.sleep(0.05)
    pid = int(pid_file.read_text())

    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call

    with pytest.raises(ProcessLookupError):  # killed and reaped
        os.kill(pid, 0)


def test_packed_texts_give_back_each_text_in_order_after_pickling() -> None:
    texts = ["a@x.io", "", "zoë@exämple.com", "p\n1", "日本"]
    packed = PackedTexts(texts)
    packed.extend(["last"])

    back = pickle.loads(pickle.dumps(packed))

    assert len(back) == 6
    assert back.slice(0, len(back)) == [*texts, "last"]
    assert back.slice(2, 4) == ["zoë@exämple.com", "p\n1"]
    assert list(back.chunks(4)) == [texts[:4], [texts[4], "last"]]
    assert list(PackedTexts().chunks()) == []


async def until_waiting(spool: Spool, items: int) -> None:
    for _ in range(600):
        if len(spool) >= items:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{len(spool)} items came, not {items}")


async def test_a_spool_keeps_what_came_on_disk_and_gives_it_back_in_order() -> None:
    async with Spool(helper_messages(helper_work.count, 50, "answer")) as spool:
        await until_waiting(spool, 50)  # every item came before any is taken
        # ... into the spool's file, not this process's memory.
        assert spool.on_disk > 50 * 10_000

        taken = [cast(tuple[int, str], await spool.get()) for _ in range(50)]
        assert [number for number, _ in taken] == list(range(50))
        assert taken[7] == (7, "x" * 10_000)
        assert await spool.get() == Done("answer")
        assert await spool.get() == Done("answer")  # and stays done
        assert len(spool) == 0


@pytest.mark.parametrize(
    ("then", "told"), [("refuse", "ValueError: refused after 3"), ("die", "exit status 4")]
)
async def test_a_spool_gives_what_came_before_a_failure_then_the_failure(
    then: str, told: str
) -> None:
    async with Spool(helper_messages(helper_work.count, 3, then)) as spool:
        assert [cast(tuple[int, str], await spool.get())[0] for _ in range(3)] == [0, 1, 2]
        with pytest.raises(HelperFailed, match=told):
            await spool.get()


async def test_a_stream_that_ends_without_its_answer_is_a_failure_after_its_items() -> None:
    async def cut_short() -> AsyncGenerator[bytes | Done]:
        yield pickle.dumps("only")

    async with Spool(cut_short()) as spool:
        assert await spool.get() == "only"
        with pytest.raises(HelperFailed, match="ended without its answer"):
            await spool.get()


def unlinked_open_files() -> set[str]:
    """This process's descriptors of files already removed from their folder."""
    found: set[str] = set()
    for fd in os.listdir("/proc/self/fd"):
        with suppress(OSError):  # the descriptor of the listing itself is gone
            if os.readlink(f"/proc/self/fd/{fd}").endswith(" (deleted)"):
                found.add(fd)
    return found


async def test_leaving_a_spool_kills_its_helper_and_removes_its_file(tmp_path: Path) -> None:
    pid_file = tmp_path / "helper.pid"
    sent = bytearray(b"x" * 2**20)
    before = unlinked_open_files()
    async with Spool(helper_messages(helper_work.emit_then_wait, pid_file, sent)) as spool:
        assert await spool.get() == "first"
        assert len(unlinked_open_files() - before) == 1  # the spool's file, not in a folder
        sent.append(1)  # the call went whole, its buffers released while the helper works
        for _ in range(600):
            if pid_file.exists() and pid_file.read_text():
                break
            await asyncio.sleep(0.05)
        pid = int(pid_file.read_text())

    assert unlinked_open_files() <= before  # closed: its space is given back
    with pytest.raises(ProcessLookupError):  # killed and reaped
        os.kill(pid, 0)
