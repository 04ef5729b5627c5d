"""The fake Constant Contact's HTTP face: a starlette app over :class:`FakeConstantContact`.

Routes mirror the real hosts (``/oauth2/default/v1/...`` for the authorization server,
``/v3/...`` for the API) so that one base URL of each kind is all a client changes.
``/__fake__/...`` is the admin surface for tests and demos in another process.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from segport_constant_contact.fake.answers import FakeAnswer, escape
from segport_constant_contact.fake.state import FakeConstantContact

ApiWork = Callable[[Request, set[str], bytes], tuple[FakeAnswer, int | None]]


def _respond(answer: FakeAnswer) -> Response:
    if answer.html is not None:
        return HTMLResponse(answer.html, answer.status, headers=answer.headers)
    if answer.csv is not None:
        return Response(answer.csv, answer.status, headers=answer.headers, media_type="text/csv")
    return Response(
        orjson.dumps(answer.body),
        answer.status,
        headers=answer.headers,
        media_type="application/json",
    )


def _consent_page(params: dict[str, str]) -> str:
    hidden = "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in params.items()
    )
    return (
        "<!doctype html><title>Fake Constant Contact</title>"
        "<h1>Allow access to your Fake Constant Contact account?</h1>"
        f"<p>Scopes: {escape(params.get('scope', ''))}</p>"
        f'<form method="post">{hidden}'
        '<button name="decision" value="approve">Allow</button> '
        '<button name="decision" value="deny">Deny</button></form>'
    )


def create_app(state: FakeConstantContact) -> Starlette:
    async def authorize(request: Request) -> Response:
        if request.method == "POST":
            params = {k: str(v) for k, v in (await request.form()).items()}
            decision = params.pop("decision", "deny")
        else:
            params = dict(request.query_params)
            decision = None
        refusal = state.check_authorize(params)
        if refusal is not None:
            return _respond(refusal)
        if decision is None and (state.config.consent_page or params.get("prompt") == "consent"):
            return HTMLResponse(_consent_page(params))
        if decision == "deny":
            sep = "&" if "?" in params["redirect_uri"] else "?"
            target = f"{params['redirect_uri']}{sep}error=access_denied&state={params['state']}"
            return RedirectResponse(target, 302)
        return RedirectResponse(state.approve(params), 302)

    async def token(request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        return _respond(state.handle_token(request.headers.get("authorization"), form))

    def api(work: ApiWork) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            arrived = time.monotonic()
            authorization = request.headers.get("authorization")
            raw = await request.body()

            def handle() -> tuple[FakeAnswer, float]:
                # Everything that takes the state's lock runs off the event loop: recording
                # a 4 MB import holds it a while, and requests arriving meanwhile must be
                # timestamped when they arrive, not in a burst afterwards (the rate limits
                # are judged on these times).
                refusal, scopes = state.gate(authorization, arrived)
                records: int | None = None
                if refusal is not None:
                    answer = refusal
                else:
                    answer, records = work(request, scopes, raw)
                state.log(request.method, request.url.path, arrived, len(raw), records,
                          answer.status)  # fmt: skip
                return answer, state.slow_delay()

            answer, delay = await asyncio.to_thread(handle)
            if delay:
                await asyncio.sleep(delay)
            return _respond(answer)

        return endpoint

    def account_summary(request: Request, scopes: set[str], raw: bytes) -> tuple[FakeAnswer, None]:
        return state.handle_account_summary(scopes), None

    def contact_lists(request: Request, scopes: set[str], raw: bytes) -> tuple[FakeAnswer, None]:
        return state.handle_contact_lists(dict(request.query_params)), None

    def custom_fields(request: Request, scopes: set[str], raw: bytes) -> tuple[FakeAnswer, None]:
        return state.handle_custom_fields(dict(request.query_params)), None

    def activities(request: Request, scopes: set[str], raw: bytes) -> tuple[FakeAnswer, None]:
        return state.handle_activities(dict(request.query_params)), None

    def json_import(request: Request, scopes: set[str], raw: bytes) -> tuple[FakeAnswer, int]:
        return state.handle_json_import(request.headers.get("content-type"), raw)

    def add_members(request: Request, scopes: set[str], raw: bytes) -> tuple[FakeAnswer, None]:
        return state.handle_memberships(raw, add=True), None

    def remove_members(request: Request, scopes: set[str], raw: bytes) -> tuple[FakeAnswer, None]:
        return state.handle_memberships(raw, add=False), None

    def contact_export(request: Request, scopes: set[str], raw: bytes) -> tuple[FakeAnswer, None]:
        return state.handle_contact_export(raw), None

    def export_file(request: Request, scopes: set[str], raw: bytes) -> tuple[FakeAnswer, None]:
        return state.handle_export_file(request.path_params["file_export_id"]), None

    def activity(request: Request, scopes: set[str], raw: bytes) -> tuple[FakeAnswer, None]:
        return state.handle_activity(request.path_params["activity_id"]), None

    def contacts(request: Request, scopes: set[str], raw: bytes) -> tuple[FakeAnswer, None]:
        return state.handle_contacts(dict(request.query_params)), None

    async def admin_config(request: Request) -> Response:
        if request.method == "POST":
            try:
                knobs: Any = orjson.loads(await request.body())
                if not isinstance(knobs, dict):
                    raise ValueError("the body must be a JSON object of knobs")
                state.configure(**knobs)
            except (ValueError, TypeError) as exc:
                return _respond(FakeAnswer(400, {"error": str(exc)}))
        return _respond(FakeAnswer(200, state.config.as_json()))

    async def admin_lists(request: Request) -> Response:
        body = orjson.loads(await request.body() or b"{}")
        name = body.get("name") if isinstance(body, dict) else None
        if not isinstance(name, str) or not name:
            return _respond(FakeAnswer(400, {"error": "name is required"}))
        list_id = state.add_list(name, body.get("list_id"), body.get("description", ""))
        return _respond(FakeAnswer(201, {"list_id": list_id, "name": name}))

    async def admin_delete_list(request: Request) -> Response:
        list_id = request.path_params["list_id"]
        if list_id not in state.lists:
            return _respond(FakeAnswer(404, {"error": f"no list {list_id!r}"}))
        state.delete_list(list_id)
        return Response(status_code=204)

    async def admin_custom_fields(request: Request) -> Response:
        body = orjson.loads(await request.body() or b"{}")
        label = body.get("label") if isinstance(body, dict) else None
        if not isinstance(label, str) or not label.strip():
            return _respond(FakeAnswer(400, {"error": "label is required"}))
        name = state.add_custom_field(label, str(body.get("type", "string")))
        return _respond(FakeAnswer(201, {"name": name, "label": label}))

    async def admin_expire(request: Request) -> Response:
        state.expire_access_tokens()
        return Response(status_code=204)

    async def admin_tokens(request: Request) -> Response:
        return _respond(FakeAnswer(200, state.issue_tokens()))

    async def admin_stats(request: Request) -> Response:
        return _respond(FakeAnswer(200, state.stats()))

    async def admin_requests(request: Request) -> Response:
        with state.lock:
            log = [dataclasses.asdict(entry) for entry in state.request_log]
        return _respond(FakeAnswer(200, {"requests": log}))

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        return _respond(
            FakeAnswer(status, [{"error_key": "not_found", "error_message": "Not Found"}])
        )

    routes = [
        Route("/oauth2/default/v1/authorize", authorize, methods=["GET", "POST"]),
        Route("/oauth2/default/v1/token", token, methods=["POST"]),
        Route("/v3/account/summary", api(account_summary), methods=["GET"]),
        Route("/v3/contact_lists", api(contact_lists), methods=["GET"]),
        Route("/v3/contact_custom_fields", api(custom_fields), methods=["GET"]),
        Route("/v3/activities", api(activities), methods=["GET"]),
        Route("/v3/activities/contacts_json_import", api(json_import), methods=["POST"]),
        Route("/v3/activities/add_list_memberships", api(add_members), methods=["POST"]),
        Route("/v3/activities/remove_list_memberships", api(remove_members), methods=["POST"]),
        Route("/v3/activities/contact_exports", api(contact_export), methods=["POST"]),
        Route("/v3/activities/{activity_id}", api(activity), methods=["GET"]),
        Route("/v3/contact_exports/{file_export_id}", api(export_file), methods=["GET"]),
        Route("/v3/contacts", api(contacts), methods=["GET"]),
        Route("/__fake__/config", admin_config, methods=["GET", "POST"]),
        Route("/__fake__/lists", admin_lists, methods=["POST"]),
        Route("/__fake__/lists/{list_id}", admin_delete_list, methods=["DELETE"]),
        Route("/__fake__/custom_fields", admin_custom_fields, methods=["POST"]),
        Route("/__fake__/expire-tokens", admin_expire, methods=["POST"]),
        Route("/__fake__/tokens", admin_tokens, methods=["POST"]),
        Route("/__fake__/stats", admin_stats, methods=["GET"]),
        Route("/__fake__/requests", admin_requests, methods=["GET"]),
    ]
    return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})
