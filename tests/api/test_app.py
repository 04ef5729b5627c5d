"""The ASGI app around the schema: probes, request ids, guards, paging, masking, a real server."""

from __future__ import annotations

import socket
from typing import Any

import httpx

from service.app import create_app
from service.core import open_services
from tests.api import destination_fixture
from tests.api.conftest import MAX_PAGE_SIZE, MAX_QUERY_DEPTH, ApiClient
from tests.api.destination_fixture import CRASH_DETAIL, CRASHING_LIST_ID
from tests.api.operations import CREATE_EXPORT, export_input, make_connection, make_segment
from tests.support.served import serving
from tests.support.settings import make_settings


async def test_healthz_and_readyz_answer_200_when_the_database_answers(api: ApiClient) -> None:
    assert (await api.http.get("/healthz")).status_code == 200
    ready = await api.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok"}


async def test_readyz_is_503_with_a_reason_when_redis_does_not_answer(sqlite_url: str) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    settings = make_settings(sqlite_url, redis_url=f"redis://127.0.0.1:{dead_port}/0")
    async with open_services(
        settings, extra_plugins=[destination_fixture], load_entry_points=False
    ) as services:
        transport = httpx.ASGITransport(app=create_app(services))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert "Redis" in response.json()["reason"]


async def test_request_id_is_echoed_or_generated(api: ApiClient) -> None:
    given = await api.http.get("/healthz", headers={"X-Request-ID": "abc-123"})
    made = await api.http.get("/healthz")
    assert given.headers["x-request-id"] == "abc-123"
    assert len(made.headers["x-request-id"]) == 32


async def test_a_body_over_the_size_limit_is_refused_with_413(api: ApiClient) -> None:
    big = "{ viewer { sub } }" + " " * 5000
    response = await api.http.post(
        "/graphql", json={"query": big}, headers={"Authorization": f"Bearer {api.token('admin')}"}
    )
    assert response.status_code == 413


async def test_a_query_nested_past_the_depth_limit_is_refused(api: ApiClient) -> None:
    nested = "export { " * MAX_QUERY_DEPTH
    body = await api.post(
        f"{{ exportRuns {{ edges {{ node {{ {nested} id {'}' * MAX_QUERY_DEPTH} }} }} }} }}"
    )
    assert body.get("data") is None
    assert "exceeds maximum operation depth" in body["errors"][0]["message"]


async def test_get_serves_the_offline_explorer_to_browsers(api: ApiClient) -> None:
    # segport's own explorer (GraphiQL's scripts would come from a CDN).
    response = await api.http.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert "GraphQL explorer" in response.text
    assert 'src="/console/explorer.js"' in response.text


async def test_segments_are_paged_in_the_database_with_cursors(api: ApiClient) -> None:
    for index in range(7):
        await make_segment(api, f"Segment {index}")
    query = (
        "query($after: String) { segments(first: 3, after: $after) { totalCount "
        "edges { cursor node { name } } pageInfo { hasNextPage endCursor } } }"
    )
    names: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        page = (await api.data(query, {"after": after}))["segments"]
        assert page["totalCount"] == 7
        names += [edge["node"]["name"] for edge in page["edges"]]
        pages += 1
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert names == [f"Segment {index}" for index in range(7)]
    assert pages == 3
    capped = (await api.data("{ segments(first: 1000) { edges { cursor } } }"))["segments"]
    assert len(capped["edges"]) == MAX_PAGE_SIZE


async def test_a_bad_cursor_is_a_bad_user_input_error(api: ApiClient) -> None:
    body = await api.post('{ segments(after: "nonsense!") { totalCount } }')
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "nonsense!" in body["errors"][0]["message"]


async def test_unexpected_errors_are_masked_with_the_request_id(api: ApiClient) -> None:
    segment_id = await make_segment(api)
    connection_id = await make_connection(api)
    response = await api.http.post(
        "/graphql",
        json={
            "query": CREATE_EXPORT,
            "variables": {
                "input": export_input(
                    connection_id, [segment_id], settings={"listId": CRASHING_LIST_ID}
                )
            },
        },
        headers={"Authorization": f"Bearer {api.token('admin')}", "X-Request-ID": "req-42"},
    )
    body: dict[str, Any] = response.json()
    assert CRASH_DETAIL not in response.text
    assert body["errors"][0]["message"] == "Unexpected error."
    assert body["errors"][0]["extensions"] == {
        "code": "INTERNAL_SERVER_ERROR",
        "requestId": "req-42",
    }


async def test_a_real_uvicorn_server_answers_graphql_over_http(api: ApiClient) -> None:
    async with (
        serving(api.services) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http,
    ):
        response = await http.post(
            "/graphql",
            json={"query": "{ viewer { sub roles } }"},
            headers={"Authorization": f"Bearer {api.token('viewer', sub='vera')}"},
        )
        unauthenticated = await http.post("/graphql", json={"query": "{ viewer { sub } }"})
    assert response.json() == {"data": {"viewer": {"sub": "vera", "roles": ["viewer"]}}}
    assert unauthenticated.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
