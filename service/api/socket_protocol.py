"""The websocket protocol segport serves with: uvicorn's, holding less while a socket idles.

A dashboard keeps hundreds of subscriptions open, and for most of their lives they
wait. uvicorn's sans-I/O websocket protocol (``websockets-sansio``) keeps two things
for the whole life of each socket that it only needs for a moment:

- the opening handshake's request and response (their ``Headers`` and the objects
  around them), needed until the ASGI app accepts or refuses the socket;
- an :class:`asyncio.Queue` for the ASGI ``receive`` events, whose three deques and
  ``Event`` take about 3 KiB even when empty.

:class:`LeanWebSocketProtocol` drops the first once the handshake is answered and
replaces the second by :class:`ReceiveQueue`, which holds only what is queued. An idle
subscription costs about 5 KiB less (docs/performance.md, issue 14). Everything else is
uvicorn's own code: the handshake, the frames, keepalive pings and closing. It leans on
that protocol's attribute names (``queue``, ``request``, ``response``,
``handshake_complete``); tests/api_runs/test_socket_protocol.py checks them on every
run.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import uvicorn
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol


class ReceiveQueue:
    """What uvicorn's websocket protocol asks of its receive queue, and no more:
    ``put_nowait`` from the transport's callbacks, ``get`` from the app's ``receive``,
    and ``empty``. Items come out in the order they went in; a cancelled ``get``
    takes nothing."""

    __slots__ = ("_items", "_waiters")

    def __init__(self) -> None:
        self._items: deque[Any] | None = None
        self._waiters: list[asyncio.Future[None]] | None = None

    def empty(self) -> bool:
        return not self._items

    def put_nowait(self, item: Any) -> None:
        if self._items is None:
            self._items = deque()
        self._items.append(item)
        self._wake_one()

    async def get(self) -> Any:
        while not self._items:
            waiter = asyncio.get_running_loop().create_future()
            if self._waiters is None:
                self._waiters = []
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                # Cancelled (or woken and cancelled at once): pass the wake-up on, so an
                # item put meanwhile is not left waiting for the next put.
                self._discard(waiter)
                if self._items:
                    self._wake_one()
                raise
            self._discard(waiter)
        assert self._items is not None
        item = self._items.popleft()
        if not self._items:
            self._items = None  # an idle socket holds no deque
        return item

    def _wake_one(self) -> None:
        for waiter in self._waiters or ():
            if not waiter.done():
                waiter.set_result(None)
                return

    def _discard(self, waiter: asyncio.Future[None]) -> None:
        if self._waiters is None:
            return
        if waiter in self._waiters:
            self._waiters.remove(waiter)
        if not self._waiters:
            self._waiters = None


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's ``websockets-sansio`` protocol with :class:`ReceiveQueue` and without
    the handshake kept past its answer (module doc)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = ReceiveQueue()  # type: ignore[assignment]

    async def send(self, message: Any) -> None:
        await super().send(message)
        # Once the handshake is answered uvicorn never reads them again.
        if self.handshake_complete and getattr(self, "response", None) is not None:
            self.request = None  # type: ignore[assignment]
            self.response = None  # type: ignore[assignment]


def server_config(app: Any, **options: Any) -> uvicorn.Config:
    """uvicorn's configuration for serving ``app`` as ``segport serve`` does: websockets
    through :class:`LeanWebSocketProtocol`, without permessage-deflate (its compressor
    state was most of an idle subscription's memory, and run events are small JSON;
    docs/performance.md). ``options`` are uvicorn's (host, port, log settings)."""
    return uvicorn.Config(app, ws=LeanWebSocketProtocol, ws_per_message_deflate=False, **options)
