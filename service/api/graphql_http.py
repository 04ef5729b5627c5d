"""GraphQL over HTTP and the websocket, as the GraphQL-over-HTTP draft and the audits ask.

Strawberry's ASGI view, with what it lacks:

- ``Accept: application/graphql-response+json`` is answered in that media
  type; a request that fails before execution (unparsable or invalid document,
  variables that do not coerce, a limit exceeded, no valid token) then gets a
  4xx status and no ``data`` key. Clients asking for ``application/json`` (or
  nothing, or ``*/*``) keep the classic answers: 200 with ``data: null``.
- A mutation over GET answers 405 with ``Allow: POST``.
- A body that is not a JSON object (``null``, ``"x"``, ``5``, ``true``) or is
  nested too deeply to decode answers 400 with a message, not a 500.
- Over the websocket (graphql-transport-ws), a query longer than
  ``max_ws_query_bytes`` is refused with an ``error`` message for its id.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.schema.base import BaseSchema
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import SubscribeMessage
from strawberry.types import ExecutionResult

from service.api.context import RequestContext
from service.api.errors import INTERNAL, UNAUTHENTICATED

APPLICATION_JSON = "application/json"
GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
QUERY_TOO_LARGE = "QUERY_TOO_LARGE"
NOT_AN_OBJECT = 'The request body must be a JSON object, e.g. {"query": "{ viewer { sub } }"}.'


def response_media_type(accept: str | None) -> str:
    """``application/graphql-response+json`` when the client prefers it, else JSON.

    Only an explicit mention counts: no ``Accept``, ``*/*`` and unknown types get
    ``application/json``, what every client understood before the draft.
    """
    weights: dict[str, float] = {}
    for media_range in (accept or "").split(","):
        media_type, *parameters = (part.strip() for part in media_range.split(";"))
        weight = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        weights.setdefault(media_type.lower(), weight)
    preferred = weights.get(GRAPHQL_RESPONSE_JSON, 0.0)
    json_weight = max(weights.get(key, 0.0) for key in (APPLICATION_JSON, "application/*", "*/*"))
    return GRAPHQL_RESPONSE_JSON if preferred > 0 and preferred >= json_weight else APPLICATION_JSON


def failed_before_execution(response: GraphQLHTTPResponse) -> bool:
    """No data and no error of a field: parsing, validation, variables or a refusal failed.

    Every error a resolver raises carries its path; the errors of a request
    that never executed carry none.
    """
    errors = response.get("errors") or []
    return (
        response.get("data") is None
        and bool(errors)
        and not any(isinstance(error, Mapping) and error.get("path") for error in errors)
    )


def request_error_status(response: GraphQLHTTPResponse) -> int:
    codes = {
        error.get("extensions", {}).get("code")
        for error in response.get("errors") or []
        if isinstance(error, Mapping)
    }
    if INTERNAL in codes:
        return 500
    return 401 if UNAUTHENTICATED in codes else 400


class NegotiatedResponse(Response):
    """The sub-response resolvers may add headers to, knowing the media type to answer in."""

    def __init__(self, graphql_media_type: str) -> None:
        super().__init__()
        self.graphql_media_type = graphql_media_type
        # Like strawberry's: no status chosen yet, and no length (the answer has its own).
        self.status_code = None  # type: ignore[assignment]
        del self.headers["content-length"]


class QuerySizeLimitedHandler(BaseGraphQLTransportWSHandler[RequestContext, None]):
    """graphql-transport-ws, refusing queries longer than the view's ``max_ws_query_bytes``."""

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        query = message["payload"]["query"]
        limit = self.view.max_ws_query_bytes if isinstance(self.view, GraphQLView) else None
        if self.connection_acknowledged and limit is not None and isinstance(query, str):
            size = len(query.encode("utf-8", "surrogatepass"))
            if size > limit:
                refusal = (
                    f"The query has {size} bytes, over the limit of {limit} "
                    "(SEGPORT_GRAPHQL_MAX_QUERY_BYTES)."
                )
                await self.send_message(
                    {
                        "id": message["id"],
                        "type": "error",
                        "payload": [{"message": refusal, "extensions": {"code": QUERY_TOO_LARGE}}],
                    }
                )
                return
        await super().handle_subscribe(message)


class GraphQLView(GraphQL[RequestContext, None]):
    """Strawberry's ASGI view, speaking GraphQL over HTTP as the draft says (module doc)."""

    graphql_transport_ws_handler_class = QuerySizeLimitedHandler

    def __init__(
        self,
        schema: BaseSchema,
        *,
        max_ws_query_bytes: int,
        graphql_ide: Any = "graphiql",
        subscription_protocols: Sequence[str] = (),
    ) -> None:
        super().__init__(
            schema, graphql_ide=graphql_ide, subscription_protocols=subscription_protocols
        )
        self.max_ws_query_bytes = max_ws_query_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope=scope, receive=receive)
        try:
            response = await self.run(request)
        except HTTPException as exc:
            response = self._refusal(request, exc)
        await response(scope, receive, send)

    def _refusal(self, request: Request, exc: HTTPException) -> Response:
        """The answer to a request refused before GraphQL saw it, in the accepted media type."""
        headers = {"Allow": "POST"} if exc.status_code == 405 else None
        if response_media_type(request.headers.get("accept")) == GRAPHQL_RESPONSE_JSON:
            body = self.encode_json({"errors": [{"message": exc.reason}]})
            return Response(
                body,
                status_code=exc.status_code,
                headers=headers,
                media_type=f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8",
            )
        return PlainTextResponse(exc.reason, status_code=exc.status_code, headers=headers)

    def decode_json(self, data: str | bytes) -> object:
        try:
            return json.loads(data)
        except RecursionError:
            raise HTTPException(400, "The JSON is nested too deeply to decode.") from None

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        # Strawberry reads fields off whatever JSON it decoded; a scalar body would crash it.
        if (
            request.method == "POST"
            and APPLICATION_JSON in (request.content_type or "")
            and (await request.get_body()).lstrip()[:1] not in (b"{", b"[")
        ):
            raise HTTPException(400, NOT_AN_OBJECT)
        return await super().parse_http_body(request)

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: RequestContext,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        try:
            return await super().execute_single(
                request, request_adapter, sub_response, context, root_value, request_data
            )
        except HTTPException as exc:
            if request_adapter.method == "GET" and isinstance(
                exc.__cause__, InvalidOperationTypeError
            ):
                raise HTTPException(405, f"{exc.reason}; send them with POST.") from exc
            raise

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        return NegotiatedResponse(response_media_type(request.headers.get("accept")))

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        media_type = getattr(sub_response, "graphql_media_type", APPLICATION_JSON)
        if media_type != GRAPHQL_RESPONSE_JSON or isinstance(response_data, list):
            return super().create_response(response_data, sub_response)
        status = 200
        if failed_before_execution(response_data):
            status = request_error_status(response_data)
            response_data = {key: value for key, value in response_data.items() if key != "data"}  # type: ignore[assignment]
        response = super().create_response(response_data, sub_response)
        response.headers["content-type"] = f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8"
        if not sub_response.status_code:
            response.status_code = status
        return response
