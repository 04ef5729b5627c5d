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
import tempfile
from array import array
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator
from contextlib import aclosing, suppress
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
    async with aclosing(helper_messages(function, *args)) as messages:
        async for message in messages:
            yield message if isinstance(message, Done) else pickle.loads(message)  # noqa: S301


async def helper_messages(
    function: Callable[..., object], *args: Any
) -> AsyncGenerator[bytes | Done]:
    """As :func:`from_helper_process`, each item still pickled (for a :class:`Spool`)."""
    # Large buffers of the call (a run's ledger index) travel out of band, written from
    # where they are: no copy of them is made here, in a pickle or a pipe's buffer.
    buffers: list[pickle.PickleBuffer] = []
    call = pickle.dumps((function, args), protocol=5, buffer_callback=buffers.append)
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
        views = [buffer.raw() for buffer in buffers]
        try:
            sizes = [view.nbytes for view in views]
            process.stdin.write(_CALL.pack(len(call), len(sizes)) + _sizes(len(sizes)).pack(*sizes))
            process.stdin.write(call)
            for view in views:
                for start in range(0, view.nbytes, _CHUNK):
                    process.stdin.write(view[start : start + _CHUNK])
                    await process.stdin.drain()
            await process.stdin.drain()
            process.stdin.close()
        finally:
            # The call's objects can be resized again.
            for view in views:
                view.release()
            for buffer in buffers:
                buffer.release()
            del call, views, buffers
        while True:
            try:
                kind, size = _FRAME.unpack(await process.stdout.readexactly(_FRAME.size))
                data = await process.stdout.readexactly(size)
            except (asyncio.IncompleteReadError, ConnectionError):
                await process.wait()
                raise HelperFailed(
                    f"the helper process ended with exit status {process.returncode}"
                ) from None
            if kind == _ITEM:
                yield data
            elif kind == _DONE:
                await process.wait()
                yield Done(pickle.loads(data))  # noqa: S301
                return
            else:
                raise HelperFailed(f"the helper process failed: {pickle.loads(data)}")  # noqa: S301
    finally:
        if process.returncode is None:  # closed, cancelled or failed while it works
            process.kill()
            await process.wait()


class Spool:
    """A helper's items kept in a temporary file, not in memory, until they are taken.

    A process that takes a helper's items later than they come (a run takes those of its
    second half once it has walked the first) would otherwise hold all of them at once.
    The spool reads them as they come (the helper never waits), writes each pickle to an
    unlinked temporary file (``TMPDIR``), and gives them back in order, one at a time::

        async with Spool(helper_messages(function, *args)) as items:
            item = await items.get()  # ... then Done(answer), or HelperFailed

    Leaving the block kills a helper still at work and removes the file.
    """

    def __init__(self, messages: AsyncGenerator[bytes | Done]) -> None:
        self._messages = messages
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 (closed when the spool closes)
        self._end_offset = 0
        self._waiting: deque[tuple[int, int]] = deque()
        """Where each item not yet taken is in the file (offset, size)."""
        self._end: Done | HelperFailed | None = None
        self._more = asyncio.Event()
        self._filling: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Spool:
        self._filling = asyncio.create_task(self._fill())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._filling is not None:
            self._filling.cancel()
            with suppress(asyncio.CancelledError):
                await self._filling
        self._file.close()

    def __len__(self) -> int:
        """Items that came and wait to be taken."""
        return len(self._waiting)

    @property
    def on_disk(self) -> int:
        """Bytes written to the spool's file so far (taken items' included)."""
        return self._end_offset

    async def get(self) -> object:
        """The next item; after the last, :class:`Done` with the call's answer. Raises
        :class:`HelperFailed` once the items that came before a failure are taken."""
        while not self._waiting:
            if isinstance(self._end, HelperFailed):
                raise self._end
            if self._end is not None:
                return self._end
            self._more.clear()
            await self._more.wait()
        offset, size = self._waiting.popleft()
        return pickle.loads(os.pread(self._file.fileno(), size, offset))  # noqa: S301

    async def _fill(self) -> None:
        fd = self._file.fileno()
        try:
            async with aclosing(self._messages) as messages:
                async for message in messages:
                    if isinstance(message, Done):
                        self._end = message
                        return
                    _write_at(fd, message, self._end_offset)
                    self._waiting.append((self._end_offset, len(message)))
                    self._end_offset += len(message)
                    self._more.set()
            self._end = HelperFailed("the helper process ended without its answer")
        except HelperFailed as exc:
            self._end = exc
        except Exception as exc:  # a full disk, say: what came before it is still taken
            self._end = HelperFailed(f"{type(exc).__name__}: {exc}")
        finally:
            self._more.set()


def _write_at(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


_CALL = struct.Struct("<QI")
"""The call to a helper: the length of its pickle and how many buffers follow it (after
their lengths, as 64-bit integers, and the pickle)."""
_CHUNK = 1 << 20
"""Bytes of a buffer written to the helper at a time."""


def _sizes(count: int) -> struct.Struct:
    """The lengths of a call's ``count`` buffers, as 64-bit integers."""
    return struct.Struct(f"<{count}Q")


def _read_into(stream: Any, buffer: bytearray) -> bytearray:
    """``buffer`` filled from ``stream`` (raises EOFError if it ends first)."""
    view, filled = memoryview(buffer), 0
    while filled < len(buffer):
        got = stream.readinto(view[filled:])
        if not got:
            raise EOFError("the call to the helper ended early")
        filled += got
    return buffer


def _read_call(stream: Any) -> tuple[Callable[..., object], tuple[Any, ...]]:
    size, count = _CALL.unpack(_read_into(stream, bytearray(_CALL.size)))
    lengths = _sizes(count)
    sizes = lengths.unpack(_read_into(stream, bytearray(lengths.size)))
    call = _read_into(stream, bytearray(size))
    buffers = [_read_into(stream, bytearray(length)) for length in sizes]
    function, args = pickle.loads(call, buffers=buffers)  # noqa: S301 (our parent's call)
    return function, args


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

    function, args = _read_call(sys.stdin.buffer)
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
