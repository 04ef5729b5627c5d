"""A caller without a valid token learns nothing about the schema (issue 10, item 6).

Validation used to run before authentication, so a request without a token
got "Cannot query field 'viewe' on type 'Query'. Did you mean 'viewer'?".
Now only ``UNAUTHENTICATED`` comes back, whatever the document; a caller with
a token keeps the suggestions. Real uvicorn.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from service.domain import Role
from tests.api.served import Served, served
from tests.support.settings import make_settings

PROBES = [
    "{ viewe { sub } }",
    "{ exports(firs: 1) { totalCount } }",
    "{ exports { edges { node { displayNam } } } }",
    "mutation { createExport(input: {nope: 1}) { export { id } } }",
    "query($id: ID!) { node(id: $id) { id } }",
    "{ __schema { types { name } } }",
]


@pytest.fixture
async def app(sqlite_url: str) -> AsyncIterator[Served]:
    async with served(make_settings(sqlite_url)) as running:
        yield running


async def errors_of(app: Served, query: str, authorization: str | None) -> list[dict[str, Any]]:
    headers = {"Authorization": authorization} if authorization else {}
    async with httpx.AsyncClient() as http:
        response = await http.post(app.http_url, json={"query": query}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body.get("data") is None
    errors: list[dict[str, Any]] = body["errors"]
    return errors


@pytest.mark.parametrize("query", PROBES)
@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token"], ids=["none", "invalid"])
async def test_without_a_valid_token_only_unauthenticated_comes_back(
    app: Served, query: str, authorization: str | None
) -> None:
    errors = await errors_of(app, query, authorization)

    assert [error["extensions"] for error in errors] == [{"code": "UNAUTHENTICATED"}]
    message = errors[0]["message"]
    assert "Did you mean" not in message
    for name in ("viewer", "Query", "Export", "first", "displayName", "__schema", "node"):
        assert name not in message


async def test_an_authenticated_caller_keeps_the_suggestions(app: Served) -> None:
    errors = await errors_of(app, "{ viewe { sub } }", app.bearer(Role.VIEWER))

    assert "Did you mean 'viewer'?" in errors[0]["message"]
