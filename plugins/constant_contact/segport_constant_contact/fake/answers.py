"""How the fake Constant Contact answers: the answer type and the shapes of its errors."""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode


@dataclass
class FakeAnswer:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    html: str | None = None
    csv: str | None = None
    """A ``text/csv`` body (the contact export file)."""


def api_errors(status: int, key: str, message: str) -> FakeAnswer:
    """Constant Contact's usual error body: an array of error objects."""
    return FakeAnswer(status, [{"error_key": key, "error_message": message}])


def oauth_error(status: int, error: str, description: str) -> FakeAnswer:
    return FakeAnswer(status, {"error": error, "error_description": description})


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def with_query(url: str, query: dict[str, str]) -> str:
    return f"{url}{'&' if '?' in url else '?'}{urlencode(query)}"


def escape(text: str) -> str:
    return html.escape(text)
