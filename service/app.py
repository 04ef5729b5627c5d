"""The ASGI application: GraphQL over HTTP and websockets, probes, the OAuth callback,
the web console (``/console/``, static files of this package).

:func:`create_app` serves an already-open :class:`~service.core.Services`
(tests, embedding); :func:`create_app_from_settings` opens and closes the
services in the app's lifespan (``segport serve``). Either way the services
hang off ``app.state.services``, and the part of them the GraphQL API uses
(:class:`~service.api.context.ApiParts`) off ``app.state.api_parts``.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import structlog
from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UnsetType

from service.access.auth import AuthenticationError
from service.api.context import ApiParts, RequestContext
from service.api.destination_answers import DestinationAnswers
from service.api.graphql_http import GraphQLView
from service.api.operation_limits import OperationLimits
from service.api.schema import create_schema
from service.api.subscription_slots import SubscriptionSlots
from service.api.transport_limits import BodyReadTimeoutMiddleware, HeaderSizeLimitMiddleware
from service.api.websocket import TokenBoundTransportWSHandler
from service.connections.oauth import oauth_callback
from service.core import Services, open_services
from service.observability.collector import FreedMemoryReturn, settle_after_start_up
from service.observability.metrics import metrics_endpoint
from service.runs.embedded import in_process_runs
from service.runs.preview import preview_export
from service.runs.whole_list import confirmed_cap
from service.settings import Settings

log = structlog.get_logger(__name__)

REQUEST_ID_HEADER = "x-request-id"
_ACCEPTABLE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
PROBE_TIMEOUT_SECONDS = 5.0

CONSOLE_DIRECTORY = Path(__file__).parent / "console"
"""The console's HTML, JavaScript modules and stylesheet (package data of ``service``)."""
EXPLORER_PAGE = "explorer.html"
"""The developer explorer, served by ``GET /graphql`` in a browser (``SEGPORT_GRAPHIQL``)."""
CONSOLE_POLICY = (
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
"""The console loads nothing from elsewhere, and no other site may frame it."""


class RequestIdMiddleware:
    """One id per request: the caller's ``X-Request-ID`` when sane, else a new one.

    Bound into structlog's context variables (every log line of the request
    carries it), kept in ``scope["state"]`` for the GraphQL context, and
    returned in the response's ``X-Request-ID`` header.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = (
            dict(scope.get("headers") or []).get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        )
        # Untrusted input ends up in logs: only accept short, plain ids.
        request_id = given if _ACCEPTABLE_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            await self.app(scope, receive, send_with_id)


class BodySizeLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with 413, before the app reads them.

    The body is buffered (it is at most ``max_bytes``) so that a client that
    lies about, or omits, ``Content-Length`` is caught too.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] != "http":
            return self.app(scope, receive, send)  # no frame of its own, as in transport_limits
        return self._limited(scope, receive, send)

    async def _limited(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse(
            {"error": f"request body larger than {self.max_bytes} bytes"}, status_code=413
        )
        await response(scope, receive, send)


class ConsoleFiles(StaticFiles):
    """The console's static files, with a content security policy; the explorer's files
    only while the explorer is on."""

    def __init__(self, *, explorer: bool) -> None:
        super().__init__(directory=CONSOLE_DIRECTORY, html=True)
        self.explorer = explorer

    async def get_response(self, path: str, scope: Scope) -> Response:
        if not self.explorer and Path(path).name.startswith("explorer."):
            return PlainTextResponse("Not Found", status_code=404)
        response = await super().get_response(path, scope)
        response.headers["Content-Security-Policy"] = CONSOLE_POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response


class SegportGraphQL(GraphQLView):
    """Strawberry's ASGI view with segport's context and websocket authentication.

    A browser's ``GET /graphql`` gets segport's own explorer page instead of
    GraphiQL, whose scripts would come from a CDN (so it would not load offline).
    """

    graphql_transport_ws_handler_class = TokenBoundTransportWSHandler

    async def render_graphql_ide(self, request: Request) -> Response:
        page = (CONSOLE_DIRECTORY / EXPLORER_PAGE).read_text(encoding="utf-8")
        return HTMLResponse(page, headers={"Content-Security-Policy": CONSOLE_POLICY})

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket | None = None
    ) -> RequestContext:
        return RequestContext(
            parts=request.app.state.api_parts,
            request=request,
            response=response,
            request_id=str(request.scope.get("state", {}).get("request_id", "")),
        )

    async def on_ws_connect(self, context: RequestContext) -> UnsetType | dict[str, object] | None:
        # The websocket carries the token once, in connection_init's payload.
        try:
            await context.authenticate()
        except AuthenticationError as exc:
            raise ConnectionRejectionError({"code": "UNAUTHENTICATED"}) from exc
        return await super().on_ws_connect(context)


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


async def readyz(request: Request) -> Response:
    services: Services = request.app.state.services
    try:
        await asyncio.wait_for(services.store.ping(), PROBE_TIMEOUT_SECONDS)
    except Exception as exc:  # the probe reports any failure, it never raises
        log.warning("readiness_failed", part="database", error=type(exc).__name__)
        return _unavailable(f"database does not answer ({type(exc).__name__})")
    if services.settings.redis_url:
        try:
            if services.redis is None:
                raise RuntimeError("no Redis client")
            await asyncio.wait_for(services.redis.ping(), PROBE_TIMEOUT_SECONDS)
        except Exception as exc:  # the probe reports any failure, it never raises
            log.warning("readiness_failed", part="redis", error=type(exc).__name__)
            return _unavailable(f"Redis does not answer ({type(exc).__name__})")
    return JSONResponse({"status": "ok"})


def _unavailable(reason: str) -> Response:
    return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)


async def oauth_callback_route(request: Request) -> Response:
    """``GET /oauth/callback``: the provider sends the browser back here."""
    services: Services = request.app.state.services
    settings = services.settings
    return await oauth_callback(request, services.oauth, settings.after_authorization_url)


def api_parts(services: Services) -> ApiParts:
    """What the GraphQL API gets of ``services``."""
    return ApiParts(
        settings=services.settings,
        store=services.store,
        destinations=services.destinations,
        verifier=services.verifier,
        cipher=services.cipher,
        destination_access=services.destination_access,
        oauth=services.oauth,
        runs=services.runs,
        events=services.events,
        metrics=services.metrics,
        destination_answers=DestinationAnswers.of(services.settings),
        previewer=partial(preview_export, services.run_context),
        whole_list_check=partial(confirmed_cap, services.run_context.seal),
        # Memory back to the system once a crowd of subscriptions has gone.
        subscription_slots=SubscriptionSlots(on_change=FreedMemoryReturn().watch),
    )


def _serve(app: Starlette, services: Services) -> None:
    """Hang ``services`` (and the API's parts of them) off ``app``."""
    app.state.services = services
    app.state.api_parts = api_parts(services)


def _build(settings: Settings, lifespan: Any = None) -> Starlette:
    graphql = SegportGraphQL(
        create_schema(OperationLimits.of(settings)),
        max_ws_query_bytes=settings.graphql_max_query_bytes,
        graphql_ide="graphiql" if settings.graphiql else None,
        subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL],
    )
    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_endpoint),
            Route("/oauth/callback", oauth_callback_route),
            Mount("/console", app=ConsoleFiles(explorer=settings.graphiql), name="console"),
        ],
        lifespan=lifespan,
    )
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_bytes)
    # Outside the size limit, whose reading of the body it times.
    app.add_middleware(BodyReadTimeoutMiddleware, seconds=settings.request_body_timeout_seconds)
    app.add_middleware(HeaderSizeLimitMiddleware, max_bytes=settings.max_header_bytes)
    if settings.cors_origins:
        # Outside the limits, so a refused request still reaches the page that sent it.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", REQUEST_ID_HEADER],
            expose_headers=[REQUEST_ID_HEADER],
            max_age=600,
        )
    # Added last, so it runs first: even a refused body gets a request id.
    app.add_middleware(RequestIdMiddleware)
    return app


def create_app(services: Services) -> Starlette:
    """An app serving ``services``, which the caller opened and will close."""
    app = _build(services.settings)
    _serve(app, services)
    return app


def create_app_from_settings(
    settings: Settings,
    *,
    extra_plugins: Iterable[ModuleType | object] = (),
    load_entry_points: bool = True,
) -> Starlette:
    """An app that opens its services at start-up and closes them at shutdown."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_services(
            settings, extra_plugins=extra_plugins, load_entry_points=load_entry_points
        ) as services:
            _serve(app, services)
            # Embedded mode: this process also carries runs and ticks the schedule.
            async with in_process_runs(services.run_context):
                settle_after_start_up()
                yield

    return _build(settings, lifespan)
