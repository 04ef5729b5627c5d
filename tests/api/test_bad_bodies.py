"""Bodies that are not a GraphQL request answer 400 with a message (issue 10, item 5).

``null``, ``"x"``, ``5``, ``true`` and JSON nested 100,000 deep used to crash
strawberry's request parsing: HTTP 500 and a traceback in the logs. Real
uvicorn; uvicorn's error logger and the root logger are watched for tracebacks.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from service.domain import Role
from tests.api.served import Served, served
from tests.support.settings import make_settings

DEEP = 100_000
BODIES = {
    "null": b"null",
    "string": b'"x"',
    "number": b"5",
    "true": b"true",
    "deep-array": b"[" * DEEP + b"]" * DEEP,
    "deep-in-variables": b'{"query": "{ viewer { sub } }", "variables": {"a": '
    + b"[" * DEEP
    + b"]" * DEEP
    + b"}}",
}


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def logged() -> Iterator[Records]:
    """Records of uvicorn's error logger (where an app's crash goes) and of the root logger."""
    handler = Records()
    loggers = [logging.getLogger("uvicorn.error"), logging.getLogger()]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler
    for logger in loggers:
        logger.removeHandler(handler)


@pytest.fixture
async def app(sqlite_url: str) -> AsyncIterator[Served]:
    # A body limit large enough for the deep bodies (200 KB): they reach the JSON decoder.
    async with served(make_settings(sqlite_url, max_request_bytes=1_000_000)) as running:
        yield running


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
async def test_a_body_that_is_not_a_request_is_400_with_a_message_and_no_traceback(
    app: Served, logged: Records, body: bytes
) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            app.http_url,
            content=body,
            headers={"Content-Type": "application/json", "Authorization": app.bearer(Role.ADMIN)},
        )

    assert response.status_code == 400, response.text
    assert "JSON" in response.text
    assert [
        r.getMessage() for r in logged.records if r.exc_info or r.levelno >= logging.ERROR
    ] == []
