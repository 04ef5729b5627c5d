"""Work in a helper process: a second core for CPU-bound Python work.

Mapping profiles is Python code, which one process runs on one core at a time. A preview
or a changes run of a large segment hands part of its walk to a helper: a new
interpreter (``python -m service.runs.helper``, so nothing of this process's threads,
event loop or open connections is copied into it) that reads a pickled call on its
standard input and writes back, as messages (a kind, a length, a pickle), the items it
makes as it goes and then its answer. Whatever the helper prints goes to its standard
error: its standard output carries only those messages.

Both ends are this service's own code, started by this process, so the pickles are
trusted. Cancelling the await kills the helper.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import struct
import sys
from array import array
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator
from contextlib import aclosing
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar, cast

R = TypeVar("R")


class PackedTexts:
    """Texts as one UTF-8 buffer and where each ends: how many short texts (keys, profile
    ids) travel to or from a helper. Half a million take a few MB this way, against about
    35 MB as ``str`` objects, and come back as ``str`` a slice at a time."""

    __slots__ = ("_ends", "_text")
    _text: bytes | bytearray
    """Read only (bytes) once it has travelled."""

    def __init__(self, texts: Iterable[str] = ()) -> None:
        self._text = bytearray()
        self._ends = array("I")  # a buffer of at most 4 GiB (an append past it raises)
        self.extend(texts)

    def extend(self, texts: Iterable[str]) -> None:
        text, ends = self._text, self._ends
        assert isinstance(text, bytearray), "texts that travelled are read only"
        for item in texts:
            text += item.encode()
            ends.append(len(text))

    def __len__(self) -> int:
        return len(self._ends)

    def slice(self, first: int, last: int) -> list[str]:
        """Texts ``first`` to ``last`` (excluded)."""
        text, ends = self._text, self._ends
        start = ends[first - 1] if first else 0
        out: list[str] = []
        for end in ends[first:last]:
            out.append(text[start:end].decode())
            start = end
        return out

    def chunks(self, size: int = 10_000) -> Iterator[list[str]]:
        """All of them, in order, ``size`` at a time."""
        for first in range(0, len(self), size):
            yield self.slice(first, first + size)

    def __getstate__(self) -> tuple[bytes, bytes]:
        return bytes(self._text), self._ends.tobytes()

    def __setstate__(self, state: tuple[bytes, bytes]) -> None:
        self._text = state[0]
        self._ends = array("I")
        self._ends.frombytes(state[1])


class HelperFailed(Exception):
    """The helper process failed, died or answered nothing: the work is still to do."""


Emit = Callable[[object], None]
"""How a streaming call sends an item to the process that asked for it."""


@dataclass(frozen=True, slots=True)
class Done:
    """The last item of :func:`from_helper_process`: the call's own answer."""

    value: Any


async def in_helper_process(function: Callable[..., R], *args: Any) -> R:
    """``function(*args)`` in a helper process, returned here (both must pickle)."""
    async with aclosing(from_helper_process(_plain, function, *args)) as items:
        async for item in items:
            if isinstance(item, Done):
                return cast(R, item.value)
    raise AssertionError("a helper's answer ends with Done")  # pragma: no cover


def _plain(emit: Emit, function: Callable[..., object], *args: Any) -> object:
    return function(*args)


async def from_helper_process(
    function: Callable[..., object], *args: Any
) -> AsyncGenerator[object]:
    """Run ``function(emit, *args)`` in a helper process: yields each item it passes to
    ``emit`` as it comes (so the helper never waits for this process to have taken a
    whole answer, nor this one holds it twice, as bytes and as objects), and then
    :class:`Done` with what it returned. Closing the generator kills the helper."""
    call = pickle.dumps((function, args), protocol=pickle.HIGHEST_PROTOCOL)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        __name__,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        process.stdin.write(call)
        del call  # the call can be large (a run's ledger index): not kept while it works
        await process.stdin.drain()
        process.stdin.close()
        while True:
            try:
                kind, size = _FRAME.unpack(await process.stdout.readexactly(_FRAME.size))
                item = pickle.loads(await process.stdout.readexactly(size))  # noqa: S301
            except (asyncio.IncompleteReadError, ConnectionError):
                await process.wait()
                raise HelperFailed(
                    f"the helper process ended with exit status {process.returncode}"
                ) from None
            if kind == _ITEM:
                yield item
            elif kind == _DONE:
                await process.wait()
                yield Done(item)
                return
            else:
                raise HelperFailed(f"the helper process failed: {item}")
    finally:
        if process.returncode is None:  # closed, cancelled or failed while it works
            process.kill()
            await process.wait()


_FRAME = struct.Struct("<cQ")
"""A message from the helper: its kind and the length of the pickle that follows."""
_ITEM, _DONE, _ERROR = b"i", b"d", b"e"


def _serve() -> int:
    """The helper's side: one call from standard input; its items and its answer (or
    its failure) to standard output, each as one message."""
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints go to stderr

    def send(kind: bytes, value: object) -> None:
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        answers.write(_FRAME.pack(kind, len(data)))
        answers.write(data)
        answers.flush()

    function, args = pickle.load(sys.stdin.buffer)  # noqa: S301 (our parent's call)
    with answers:
        try:
            answer = function(partial(send, _ITEM), *args)
        except Exception as exc:  # told to the parent, which carries on
            send(_ERROR, f"{type(exc).__name__}: {exc}")
        else:
            send(_DONE, answer)
    return 0


if __name__ == "__main__":
    sys.exit(_serve())
