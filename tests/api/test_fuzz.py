"""Schemathesis fuzzes the GraphQL endpoint of a real server: no 5xx, nothing unmasked leaks.

The server runs in its own thread and event loop (schemathesis calls it with a
blocking client), opening its services in the lifespan like ``segport serve``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import graphql
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.core.result import Err
from schemathesis.graphql import nodes

from service.access.auth import mint_token
from service.app import create_app_from_settings
from service.domain import Role
from tests.api import destination_fixture
from tests.support.settings import make_settings

_NAMES = st.sampled_from(["listId", "region", "apiToken", "Email", "x"])
_VALUES = st.one_of(
    st.text(max_size=20).map(nodes.String), st.integers().map(nodes.Int), st.just(nodes.Null)
)
# JSON inputs: objects of a few fields, or a bare scalar (which the API must refuse cleanly).
schemathesis.graphql.scalar(
    "JSON",
    st.one_of(
        st.lists(st.tuples(_NAMES, _VALUES), max_size=3).map(
            lambda pairs: nodes.Object(
                [
                    graphql.ObjectFieldNode(name=graphql.NameNode(value=name), value=value)
                    for name, value in dict(pairs).items()
                ]
            )
        ),
        _VALUES,
    ),
)
schemathesis.graphql.scalar("DateTime", st.just(nodes.String("2024-01-01T00:00:00+00:00")))


@pytest.fixture
def live_url(tmp_path: Path) -> Iterator[tuple[str, str]]:
    app_settings = make_settings(f"sqlite:///{tmp_path / 'fuzz.db'}")
    app = create_app_from_settings(
        app_settings, extra_plugins=[destination_fixture], load_entry_points=False
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    token = mint_token(app_settings, "fuzzer", [Role.ADMIN])
    try:
        yield f"http://127.0.0.1:{port}/graphql", token
    finally:
        server.should_exit = True
        thread.join()


def test_fuzzed_operations_never_answer_5xx_or_leak_exceptions(live_url: tuple[str, str]) -> None:
    url, token = live_url
    headers = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.graphql.from_url(url, headers=headers)
    operations: list[schemathesis.APIOperation[Any, Any, Any, Any]] = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # the service's own schema: any operation must be readable
        operations.append(result.ok())
    strategy = st.one_of([operation.as_strategy() for operation in operations])

    @settings(
        max_examples=80,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def check(case: schemathesis.Case[Any]) -> None:
        response = case.call(headers=headers)
        assert response.status_code < 500, response.text
        assert "Traceback" not in response.text
        for error in response.json().get("errors") or []:
            code = (error.get("extensions") or {}).get("code")
            if code == "INTERNAL_SERVER_ERROR":
                assert error["message"] == "Unexpected error."

    check()
