"""GraphQL over HTTP as the draft and the graphql-http audits say (issue 10, item 24).

``Accept: application/graphql-response+json`` gets that media type, and a
request that fails before execution gets a 4xx status and no ``data``;
``application/json`` (or no Accept, or ``*/*``) keeps the classic answers; a
mutation over GET is 405 with ``Allow``. Real uvicorn.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from service.domain import Role
from tests.api.served import Served, served
from tests.support.settings import make_settings

GRAPHQL_RESPONSE = "application/graphql-response+json"
VIEWER = "{ viewer { sub } }"
MUTATION = 'mutation { upsertSegment(input: {name: "N"}) { userErrors { code } } }'


@pytest.fixture
async def app(sqlite_url: str) -> AsyncIterator[Served]:
    async with served(make_settings(sqlite_url)) as running:
        yield running


async def post(
    app: Served,
    body: dict[str, Any],
    *,
    accept: str | None = GRAPHQL_RESPONSE,
    authorization: str | None = "admin",
) -> httpx.Response:
    headers = {"Authorization": app.bearer(Role.ADMIN)} if authorization else {}
    if accept is not None:
        headers["Accept"] = accept
    async with httpx.AsyncClient() as http:
        return await http.post(app.http_url, json=body, headers=headers)


async def get(app: Served, query: str, *, accept: str | None = GRAPHQL_RESPONSE) -> httpx.Response:
    headers = {"Authorization": app.bearer(Role.ADMIN)}
    if accept is not None:
        headers["Accept"] = accept
    async with httpx.AsyncClient() as http:
        return await http.get(app.http_url, params={"query": query}, headers=headers)


def media_type(response: httpx.Response) -> str:
    return response.headers["content-type"].split(";")[0].strip()


async def test_graphql_response_json_is_answered_in_that_media_type(app: Served) -> None:
    response = await post(app, {"query": VIEWER})

    assert response.status_code == 200
    assert response.headers["content-type"] == f"{GRAPHQL_RESPONSE}; charset=utf-8"
    assert response.json() == {"data": {"viewer": {"sub": "alice"}}}


@pytest.mark.parametrize(
    "accept",
    [None, "*/*", "application/json", f"application/json, {GRAPHQL_RESPONSE};q=0.5"],
)
async def test_other_clients_keep_application_json(app: Served, accept: str | None) -> None:
    response = await post(app, {"query": VIEWER}, accept=accept)

    assert media_type(response) == "application/json"
    assert response.json() == {"data": {"viewer": {"sub": "alice"}}}


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"query": "{ viewer { sub "}, "Syntax Error"),
        ({"query": "{ viewer { nope } }"}, "Cannot query field 'nope'"),
        ({"query": "query($n: Int!) { exports(first: $n) { totalCount } }"}, "$n"),
        (
            {
                "query": "query($n: Int!) { exports(first: $n) { totalCount } }",
                "variables": {"n": "x"},
            },
            "$n",
        ),
    ],
    ids=["parse", "validation", "missing-variable", "variable-coercion"],
)
async def test_a_request_failing_before_execution_is_400_without_data(
    app: Served, body: dict[str, Any], words: str
) -> None:
    strict = await post(app, body)
    classic = await post(app, body, accept="application/json")

    assert strict.status_code == 400
    assert media_type(strict) == GRAPHQL_RESPONSE
    assert "data" not in strict.json()
    assert words in strict.json()["errors"][0]["message"]
    # application/json keeps the answers clients had before: 200, data null.
    assert classic.status_code == 200
    assert classic.json()["data"] is None
    assert words in classic.json()["errors"][0]["message"]


async def test_an_error_during_execution_stays_200_with_data(app: Served) -> None:
    response = await post(
        app, {"query": '{ viewer { sub } segments(after: "nonsense!") { totalCount } }'}
    )

    body = response.json()
    assert response.status_code == 200
    assert "data" in body
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert body["errors"][0]["path"] == ["segments"]


async def test_no_valid_token_is_401_without_data(app: Served) -> None:
    response = await post(app, {"query": VIEWER}, authorization=None)

    assert response.status_code == 401
    assert response.json() == {
        "errors": [
            {
                "message": response.json()["errors"][0]["message"],
                "extensions": {"code": "UNAUTHENTICATED"},
            }
        ]
    }


async def test_a_request_strawberry_refuses_is_a_json_error_in_the_new_media_type(
    app: Served,
) -> None:
    strict = await post(app, {"variables": {}})
    classic = await post(app, {"variables": {}}, accept="application/json")

    assert strict.status_code == 400
    assert media_type(strict) == GRAPHQL_RESPONSE
    assert strict.json() == {"errors": [{"message": "No GraphQL query found in the request"}]}
    assert classic.status_code == 400
    assert classic.text == "No GraphQL query found in the request"


@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE, "application/json"])
async def test_a_mutation_over_get_is_405_with_allow(app: Served, accept: str) -> None:
    response = await get(app, MUTATION, accept=accept)

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert "mutations are not allowed" in response.text
    counted = await post(app, {"query": "{ segments { totalCount } }"})
    assert counted.json()["data"]["segments"]["totalCount"] == 0, "the mutation did not run"


async def test_a_query_over_get_is_answered(app: Served) -> None:
    response = await get(app, VIEWER)

    assert response.status_code == 200
    assert response.json() == {"data": {"viewer": {"sub": "alice"}}}
