"""service.runs.helper: a call in a new interpreter, its answer back, cancellable."""

from __future__ import annotations

import asyncio
import os
import pickle
from pathlib import Path

import pytest

from service.runs.helper import HelperFailed, PackedTexts, in_helper_process
from tests.support import helper_work


async def test_a_call_runs_in_another_process_and_its_answer_comes_back() -> None:
    assert await in_helper_process(helper_work.add, 2, 40) == 42  # the print went to stderr


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
