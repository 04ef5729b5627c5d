"""A tiny webhook collector for the toy destination's tests, served for real by uvicorn.

It keeps what it received in memory, rejects addresses at ``blocked.example`` (so
per-record rejections can be tested), refuses to remove addresses at ``locked.example``
(so failed removals can be tested), and can be told to answer the next POSTs
with an error status (to test retries).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.net import free_port

API_KEY = "collector-key-123"
ACCOUNT_NAME = "Toy collector account"


@dataclass
class CollectorState:
    received: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: int = 0
    removed: list[str] = field(default_factory=list)
    """Addresses taken off an endpoint, in the order asked."""
    fail_next: list[int] = field(default_factory=list)
    """Statuses to answer the next POSTs with, one per request."""


def create_collector(state: CollectorState) -> Starlette:
    def authorized(request: Request) -> bool:
        return request.headers.get("x-api-key") == API_KEY

    async def account(request: Request) -> Response:
        if not authorized(request):
            return JSONResponse({"error": "bad key"}, status_code=401)
        return JSONResponse({"name": ACCOUNT_NAME})

    async def collect(request: Request) -> Response:
        state.requests += 1
        if state.fail_next:
            return JSONResponse({"error": "try later"}, status_code=state.fail_next.pop(0))
        if not authorized(request):
            return JSONResponse({"error": "bad key"}, status_code=401)
        body = await request.json()
        contacts = body.get("contacts") if isinstance(body, dict) else None
        if not isinstance(contacts, list):
            return Response('body must be {"contacts": [...]}', status_code=400)
        kept = state.received.setdefault(request.path_params["endpoint"], [])
        rejected = []
        for index, contact in enumerate(contacts):
            if str(contact.get("email", "")).endswith("@blocked.example"):
                rejected.append({"index": index, "code": "BLOCKED", "message": "domain blocked"})
            else:
                kept.append(contact)
        return JSONResponse({"accepted": len(contacts) - len(rejected), "rejected": rejected})

    async def remove(request: Request) -> Response:
        state.requests += 1
        if not authorized(request):
            return JSONResponse({"error": "bad key"}, status_code=401)
        body = await request.json()
        emails = body.get("emails") if isinstance(body, dict) else None
        if not isinstance(emails, list):
            return Response('body must be {"emails": [...]}', status_code=400)
        locked = [
            index for index, email in enumerate(emails) if str(email).endswith("@locked.example")
        ]
        failed = [{"index": index, "message": "this member is locked"} for index in locked]
        gone = {str(email).lower() for email in emails} - {str(emails[i]).lower() for i in locked}
        kept = state.received.setdefault(request.path_params["endpoint"], [])
        kept[:] = [c for c in kept if str(c.get("email", "")).lower() not in gone]
        state.removed.extend(sorted(gone))
        return JSONResponse({"failed": failed})

    return Starlette(
        routes=[
            Route("/account", account),
            Route("/collect/{endpoint}", collect, methods=["POST"]),
            Route("/remove/{endpoint}", remove, methods=["POST"]),
        ]
    )


@contextmanager
def serve_collector(state: CollectorState) -> Iterator[str]:
    """Serve the collector on a free port in a thread; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(
        create_collector(state), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the collector did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
