"""Limits on what one HTTP request may hold the server with: its headers and its body's pace.

uvicorn (with httptools) accepts request heads of any size and has no
deadline for a request body (``timeout_keep_alive`` only bounds the idle time
between requests), so these ASGI middlewares do it, whatever the server:

* :class:`HeaderSizeLimitMiddleware`: a request head larger than
  ``SEGPORT_MAX_HEADER_BYTES`` answers 431 (a websocket handshake is
  refused), before anything reads a header, let alone decodes a token;
* :class:`BodyReadTimeoutMiddleware`: a body not received in full within
  ``SEGPORT_REQUEST_BODY_TIMEOUT_SECONDS`` answers 408 and the connection
  closes, so half-sent bodies do not hold the server.

What they let through, they hand on without a frame of their own (``__call__`` returns
the inner app's awaitable): a websocket holds every middleware frame it went through
for as long as it is open, and a dashboard keeps hundreds open.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import structlog
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocketClose

log = structlog.get_logger(__name__)

POLICY_VIOLATION = 1008
"""WebSocket close code for a refused handshake (the client sees HTTP 403)."""


def head_size(scope: Scope) -> int:
    """Bytes of the request's header names and values."""
    return sum(len(name) + len(value) for name, value in scope.get("headers") or [])


class HeaderSizeLimitMiddleware:
    """Refuse requests (and websocket handshakes) whose headers exceed ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] not in ("http", "websocket") or head_size(scope) <= self.max_bytes:
            return self.app(scope, receive, send)  # no frame of its own (module doc)
        return self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        log.warning("request_headers_too_large", size=head_size(scope), limit=self.max_bytes)
        if scope["type"] == "websocket":
            await WebSocketClose(code=POLICY_VIOLATION)(scope, receive, send)
            return
        response = JSONResponse(
            {"error": f"request headers larger than {self.max_bytes} bytes"},
            status_code=431,
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


class _BodyTimedOut(Exception):
    """The client did not finish sending its body in time."""


class BodyReadTimeoutMiddleware:
    """Answer 408 when the request body is not in within ``seconds`` of the request's start.

    Only the body is timed: once its last chunk arrived, what the app waits
    for afterwards (a disconnect, say) is not bounded here.
    """

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] != "http":
            return self.app(scope, receive, send)  # no frame of its own (module doc)
        return self._timed(scope, receive, send)

    async def _timed(self, scope: Scope, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.seconds
        body_done = False
        response_started = False

        async def timed_receive() -> Message:
            nonlocal body_done
            if body_done:
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise _BodyTimedOut from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, timed_receive, tracked_send)
        except _BodyTimedOut:
            if response_started:
                raise
            log.warning("request_body_timeout", seconds=self.seconds, path=scope.get("path"))
            response = JSONResponse(
                {"error": f"request body not received within {self.seconds:g} seconds"},
                status_code=408,
                headers={"Connection": "close"},
            )
            await response(scope, receive, send)
