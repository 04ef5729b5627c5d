"""The graphql-transport-ws handler: a socket lives no longer than the token that opened it.

The token travels once, in ``connection_init``; after that strawberry would
serve the socket for as long as the client keeps it. Here the socket is
closed when the token's ``exp`` passes, and a ``subscribe`` that arrives
after it (before the close reaches the client) is refused the same way; the
Authentication extension and the subscriptions' role guard refuse any
operation that still starts after ``exp`` (see
:meth:`~service.api.context.RequestContext.authenticate`).
"""

from __future__ import annotations

import asyncio
from contextlib import suppress
from datetime import datetime
from typing import Any

from starlette.websockets import WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    Message,
    SubscribeMessage,
)

from service import domain
from service.api.graphql_http import QuerySizeLimitedHandler

TOKEN_EXPIRED_CLOSE_CODE = 4403
"""``4403: Forbidden``, not ``4401: Unauthorized``.

The protocol keeps 4401 for one case: an operation sent before the server
acknowledged the connection (a client out of step with the protocol). 4403
is how a server refuses a connection's authentication: strawberry, like the
reference graphql-ws server, closes with it when ``connection_init`` carries
no valid token, and graphql-ws clients take it as "get a fresh token and
connect again". A token that expires on an open socket is the same case as
one that had expired at ``connection_init``, so it gets the same code.
"""
EXPIRED_CLOSE_REASON = "Token expired"


class TokenBoundTransportWSHandler(QuerySizeLimitedHandler):
    """The graphql-transport-ws handler: closes the socket with 4403 when its token expires,
    and refuses queries over the size limit (:class:`QuerySizeLimitedHandler`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._expiry_timer: asyncio.Task[None] | None = None

    def on_request_accepted(self) -> None:
        super().on_request_accepted()
        if self.connection_init_timeout_task is not None:
            self.connection_init_timeout_task.add_done_callback(self._forget_init_timeout)

    def _forget_init_timeout(self, task: asyncio.Task[None]) -> None:
        # strawberry cancels the wait for connection_init when it comes, and keeps the
        # cancelled task, whose CancelledError holds the task's frames: about 1.2 KiB for
        # as long as the socket is open. Once done, nothing needs it.
        if self.connection_init_timeout_task is task:
            self.connection_init_timeout_task = None

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        await super().handle_connection_init(message)
        if not self.connection_acknowledged or self._expiry_timer is not None:
            return
        expires_at = self.context.principal.expires_at
        if expires_at is not None:
            # A task, not loop.call_later: a cancelled timer stays in asyncio's heap until
            # its time, holding a copy of the socket's context, for as long as a token
            # lives; a cancelled task is gone.
            self._expiry_timer = asyncio.create_task(self.close_when_expired(expires_at))

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if self.connection_acknowledged and self.context.principal.expired(domain.utcnow()):
            await self.close_expired()
            return
        await super().handle_subscribe(message)

    async def close_when_expired(self, expires_at: datetime) -> None:
        """Wait for ``expires_at``, then close the socket."""
        await asyncio.sleep(max(0.0, (expires_at - domain.utcnow()).total_seconds()))
        await self.close_expired()

    async def close_expired(self) -> None:
        # Operations stop first, so none of them sends on a closing socket.
        for operation_id in list(self.operations):
            await self.cleanup_operation(operation_id)
        await self.websocket.close(code=TOKEN_EXPIRED_CLOSE_CODE, reason=EXPIRED_CLOSE_REASON)

    async def send_message(self, message: Message) -> None:
        # A subscription event's payload is encoded once for every subscriber of the same
        # result (service.api.subscription_sharing); the text is what send_json would send.
        adapter = self.websocket
        raw: dict[str, Any] = dict(message)
        if raw.get("type") == "next" and isinstance(adapter, ASGIWebSocketAdapter):
            shared = self.context.parts.shared_subscriptions
            text = shared.next_message_text(str(raw["id"]), dict(raw["payload"]))
            if text is not None:
                try:
                    await adapter.ws.send_text(text)
                except WebSocketDisconnect as exc:
                    raise WebSocketDisconnected from exc
                return
        await super().send_message(message)

    async def shutdown(self) -> None:
        timer, self._expiry_timer = self._expiry_timer, None
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()
            with suppress(asyncio.CancelledError):
                await timer
        await super().shutdown()
