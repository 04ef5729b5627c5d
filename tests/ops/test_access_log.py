"""Access lines keep the path and status, never the query string (codes, states, variables)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from service.observability.logging import AccessPathOnly, configure_logging
from service.settings import Settings
from tests.support.logstream import json_lines, open_log_stream


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    with open_log_stream() as stream:
        configure_logging(Settings(log_format="json"), stream=stream)
        # An in-process uvicorn of an earlier test may have set this logger's level (the
        # stream puts it back afterwards, with every other logger's).
        logging.getLogger("uvicorn.access").setLevel(logging.INFO)
        yield stream


def events(stream: io.StringIO) -> list[str]:
    return [line["event"] for line in json_lines(stream)]


def test_an_http_access_line_has_the_path_without_its_query_string(log_stream: io.StringIO) -> None:
    access = logging.getLogger("uvicorn.access")

    # What uvicorn's h11/httptools protocols log for every response.
    access.info(
        '%s - "%s %s HTTP/%s" %d',
        "127.0.0.1:5000",
        "GET",
        "/oauth/callback?code=c0de-secret&state=st4te-secret",
        "1.1",
        200,
    )

    assert events(log_stream) == ['127.0.0.1:5000 - "GET /oauth/callback HTTP/1.1" 200']


def test_a_websocket_access_line_has_the_path_without_its_query_string(
    log_stream: io.StringIO,
) -> None:
    logging.getLogger("uvicorn.access").info(
        '%s - "WebSocket %s" [accepted]', "127.0.0.1:5000", "/graphql?variables=reader.at.x"
    )

    assert events(log_stream) == ['127.0.0.1:5000 - "WebSocket /graphql" [accepted]']


def test_reconfiguring_installs_the_access_filter_once(log_stream: io.StringIO) -> None:
    configure_logging(Settings(log_format="json"), stream=log_stream)
    configure_logging(Settings(log_format="json"), stream=log_stream)

    filters = logging.getLogger("uvicorn.access").filters
    assert len([f for f in filters if isinstance(f, AccessPathOnly)]) == 1
