"""One operation's work is bounded on every transport (issue 10, item 1).

A viewer's 600-alias query over ``exports { ... runs { ... } }`` used to run
for a minute and take half a gigabyte; over the websocket a 3 MB query ran.
Aliases, tokens, the query's size on the websocket and a cost multiplying
nested list sizes are refused before anything executes, naming the limit.
The app runs with the settings' defaults, on a real uvicorn.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from graphql import get_introspection_query

from service.domain import Role
from tests.api.served import Served, served, subscribe
from tests.support.settings import make_settings

GRAPHQL_RESPONSE = "application/graphql-response+json"
EXPORTS_AND_RUNS = (
    "exports { edges { node { id displayName runs { edges { node { id status } } } } } }"
)
ATTACK = "{ " + " ".join(f"a{n}: {EXPORTS_AND_RUNS}" for n in range(600)) + " }"
# What the console asks for its exports page (under the default limits, with room to spare).
CONSOLE_EXPORTS = """
query Exports($after: String) {
  exports(first: 50, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node {
      id displayName createdAt updatedAt attached canEdit nextRunAt settings
      connection { id displayName } segments { id name memberCount }
      fieldMapping { source target }
      lastRun { id status trigger queuedAt startedAt finishedAt progress message }
    } }
  }
}
"""
DESTINATION_TYPES = """{ destinationTypes { key displayName authKind
  connectionSettings { name required secret } exportSettings { name required }
  mappingTargets { name required maxLength } } }"""
NESTED_PAGES = (
    "query($first: Int) { exports(first: $first) { edges { node { runs(first: $first) "
    "{ edges { node { id errors(first: $first) { code } } } } } } } }"
)


@pytest.fixture
async def app(sqlite_url: str) -> AsyncIterator[Served]:
    async with served(make_settings(sqlite_url)) as running:
        yield running


async def post(
    app: Served, query: str, variables: dict[str, Any] | None = None, *, accept: str | None = None
) -> httpx.Response:
    headers = {"Authorization": app.bearer(Role.VIEWER, "vera")}
    if accept:
        headers["Accept"] = accept
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.post(
            app.http_url, json={"query": query, "variables": variables}, headers=headers
        )


def refusal(response: httpx.Response) -> str:
    body: dict[str, Any] = response.json()
    assert body.get("data") is None, body
    [error] = body["errors"]
    message: str = error["message"]
    return message


async def test_the_600_alias_query_is_refused_over_http_before_it_runs(app: Served) -> None:
    assert len(ATTACK) < app.services.settings.max_request_bytes

    classic = await post(app, ATTACK)
    # The new media type tells "refused before execution" by its status.
    strict = await post(app, ATTACK, accept=GRAPHQL_RESPONSE)

    assert classic.status_code == 200
    assert "more than 3000 tokens" in refusal(classic)
    assert strict.status_code == 400
    assert "data" not in strict.json()


async def test_the_600_alias_query_is_refused_over_the_websocket(app: Served) -> None:
    async with app.socket(Role.VIEWER) as ws:
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": ATTACK}}))
        await ws.wait_closed()

    # graphql-transport-ws closes the socket on a document that does not parse.
    assert ws.close_code == 4400
    assert ws.close_reason is not None
    assert "more than 3000 tokens" in ws.close_reason


async def test_too_many_aliases_are_refused_naming_the_limit_on_both_transports(
    app: Served,
) -> None:
    query = "{ " + " ".join(f"v{n}: viewer {{ sub }}" for n in range(31)) + " }"

    over_http = await post(app, query)
    async with app.socket(Role.VIEWER) as ws:
        over_ws = await subscribe(ws, query)

    assert refusal(over_http) == "31 aliases found. Allowed: 30"
    assert over_ws["type"] == "error"
    assert over_ws["payload"][0]["message"] == "31 aliases found. Allowed: 30"


async def test_aliases_multiply_the_cost_and_nested_pages_multiply_it(app: Served) -> None:
    two_pages_of_exports = await post(app, f"{{ a: {EXPORTS_AND_RUNS} b: {EXPORTS_AND_RUNS} }}")
    nested_pages = await post(app, NESTED_PAGES, {"first": 1000})

    for response in (two_pages_of_exports, nested_pages):
        message = refusal(response)
        assert "over the limit of 50000 (SEGPORT_GRAPHQL_MAX_COST)" in message
        assert response.json()["errors"][0]["extensions"] == {"code": "OPERATION_TOO_COSTLY"}
    # first: 1000 counts as the page size the server clamps it to: 100 x 100 x 100 errors.
    assert "may resolve 1030302 fields" in refusal(nested_pages)


async def test_the_cost_is_refused_over_the_websocket_too(app: Served) -> None:
    async with app.socket(Role.VIEWER) as ws:
        answer = await subscribe(ws, NESTED_PAGES.replace("$first", "500").split(")", 1)[1])

    assert answer["type"] == "error"
    assert "SEGPORT_GRAPHQL_MAX_COST" in answer["payload"][0]["message"]


async def test_a_query_over_the_websocket_size_limit_is_refused(app: Served) -> None:
    # 3 MB of comment around a tiny query: the size is refused, not parsed.
    padded = "{ viewer { sub } }\n#" + "x" * 3_000_000

    async with app.socket(Role.VIEWER) as ws:
        refused = await subscribe(ws, padded, "big")
        still_served = await subscribe(ws, "{ viewer { sub } }", "small")

    assert refused["type"] == "error"
    assert refused["id"] == "big"
    assert refused["payload"][0]["extensions"] == {"code": "QUERY_TOO_LARGE"}
    assert (
        "over the limit of 100000 (SEGPORT_GRAPHQL_MAX_QUERY_BYTES)"
        in (refused["payload"][0]["message"])
    )
    assert still_served == {
        "id": "small",
        "type": "next",
        "payload": {"data": {"viewer": {"sub": "alice"}}},
    }


async def test_ordinary_queries_pass_the_default_limits(app: Served) -> None:
    console = await post(app, CONSOLE_EXPORTS)
    small_pages = await post(app, NESTED_PAGES, {"first": 10})
    introspection = await post(app, get_introspection_query(descriptions=True))
    destination_types = await post(app, DESTINATION_TYPES)

    for response in (console, small_pages, introspection, destination_types):
        body = response.json()
        assert response.status_code == 200
        assert "errors" not in body, body
    assert console.json()["data"]["exports"]["totalCount"] == 0
    assert introspection.json()["data"]["__schema"]["queryType"]["name"] == "Query"
