"""The fake Mailchimp's HTTP face: a starlette app over :class:`FakeMailchimp`.

Every data center answers under its own path prefix, ``/{dc}/3.0/...``, standing in
for ``https://{dc}.api.mailchimp.com/3.0/...``: the plugin's ``api_base_url`` setting
is ``http://HOST:PORT/{dc}/3.0`` for the fake. A key used in another data center is
refused, as Mailchimp refuses it. ``/__fake__/...`` is the admin surface (knobs,
stats) and where a batch's results are downloaded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from segport_mailchimp.fake.records import FakeAccount
from segport_mailchimp.fake.state import FakeAnswer, FakeMailchimp, LoggedRequest, not_found

Work = Callable[[Request, FakeAccount, bytes], FakeAnswer]


def _respond(answer: FakeAnswer) -> Response:
    if answer.status == 204:
        return Response(status_code=204)
    if answer.raw is not None:
        return Response(answer.raw, answer.status, headers=answer.headers)
    headers = dict(answer.headers)
    media_type = headers.pop("content-type", "application/json")
    return Response(
        orjson.dumps(answer.body), answer.status, headers=headers, media_type=media_type
    )


def create_app(state: FakeMailchimp) -> Starlette:
    def api(work: Work) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            raw = await request.body()
            found = state.authenticate(
                request.headers.get("authorization"), request.path_params["dc"]
            )
            key = found.api_key if isinstance(found, FakeAccount) else None
            if not isinstance(found, FakeAccount):
                answer = found
            elif (refusal := state.enter(found)) is not None:
                answer = refusal
            else:
                try:
                    # A call takes ``latency_seconds`` in all, the fake's own work included
                    # (as a server's answer time does), not that work on top of it.
                    due = asyncio.get_running_loop().time() + state.extra_delay()
                    answer = work(request, found, raw)
                    left = due - asyncio.get_running_loop().time()
                    if left > 0:
                        await asyncio.sleep(left)
                finally:
                    state.leave(found)
            body = answer.body if isinstance(answer.body, dict) else {}
            members = (
                body["total_created"] + body["total_updated"] + body["error_count"]
                if "error_count" in body
                else None
            )
            state.log(LoggedRequest(request.method, request.url.path, answer.status, key, members))
            return _respond(answer)

        return endpoint

    def query(request: Request) -> dict[str, str]:
        return dict(request.query_params)

    def list_id(request: Request) -> str:
        return str(request.path_params["list_id"])

    def member_hash(request: Request) -> str:
        return str(request.path_params["member_hash"]).lower()

    def base_url(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    routes = [
        Route("/{dc}/3.0/ping", api(lambda r, a, b: state.ping())),
        Route("/{dc}/3.0/", api(lambda r, a, b: state.root(a))),
        Route("/{dc}/3.0/lists", api(lambda r, a, b: state.lists(a, query(r)))),
        Route(
            "/{dc}/3.0/lists/{list_id}",
            api(lambda r, a, b: state.batch_subscribe(a, list_id(r), b, query(r))),
            methods=["POST"],
        ),
        Route(
            "/{dc}/3.0/lists/{list_id}/merge-fields",
            api(lambda r, a, b: state.merge_fields(a, list_id(r), query(r))),
        ),
        Route(
            "/{dc}/3.0/lists/{list_id}/members",
            api(lambda r, a, b: state.members(a, list_id(r), query(r))),
        ),
        Route(
            "/{dc}/3.0/lists/{list_id}/members/{member_hash}",
            api(
                lambda r, a, b: (
                    state.archive(a, list_id(r), member_hash(r))
                    if r.method == "DELETE"
                    else state.put_member(a, list_id(r), member_hash(r), b)
                    if r.method == "PUT"
                    else state.member(a, list_id(r), member_hash(r))
                )
            ),
            methods=["GET", "PUT", "DELETE"],
        ),
        Route(
            "/{dc}/3.0/lists/{list_id}/members/{member_hash}/actions/delete-permanent",
            api(lambda r, a, b: state.delete_permanent(a, list_id(r), member_hash(r))),
            methods=["POST"],
        ),
        Route("/{dc}/3.0/batches", api(lambda r, a, b: state.start_batch(a, b)), methods=["POST"]),
        Route(
            "/{dc}/3.0/batches/{batch_id}",
            api(lambda r, a, b: state.batch_status(a, r.path_params["batch_id"], base_url(r))),
        ),
    ]

    async def admin_config(request: Request) -> Response:
        if request.method == "POST":
            try:
                knobs: Any = orjson.loads(await request.body())
                if not isinstance(knobs, dict):
                    raise ValueError("the body must be a JSON object of knobs")
                state.configure(**knobs)
            except (ValueError, TypeError) as exc:
                return Response(
                    orjson.dumps({"error": str(exc)}), 400, media_type="application/json"
                )
        return Response(orjson.dumps(state.config.as_json()), media_type="application/json")

    async def admin_stats(request: Request) -> Response:
        return Response(orjson.dumps(state.stats()), media_type="application/json")

    async def batch_results(request: Request) -> Response:
        answer = state.batch_results(request.path_params["batch_id"])
        return _respond(answer)

    async def unknown(request: Request) -> Response:
        return _respond(not_found())

    async def authorize(request: Request) -> Response:
        answer = state.authorize(dict(request.query_params))
        if answer.status == 302:
            return Response(status_code=302, headers=answer.headers)
        return _respond(answer)

    async def token(request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        return _respond(state.token(form))

    async def metadata(request: Request) -> Response:
        return _respond(state.metadata(request.headers.get("authorization"), base_url(request)))

    routes += [
        Route("/oauth2/authorize", authorize),
        Route("/oauth2/token", token, methods=["POST"]),
        Route("/oauth2/metadata", metadata),
        Route("/__fake__/config", admin_config, methods=["GET", "POST"]),
        Route("/__fake__/stats", admin_stats),
        Route("/__fake__/batch-results/{batch_id}.tar.gz", batch_results),
        Route("/{path:path}", unknown, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ]
    return Starlette(routes=routes)
