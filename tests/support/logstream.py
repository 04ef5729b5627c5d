"""In-process log capture: a stream to hand to ``configure_logging``, and its JSON lines."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog


@contextmanager
def open_log_stream() -> Iterator[io.StringIO]:
    """A stream for ``configure_logging(..., stream=...)``. On exit no handler writes to it
    any more and structlog is back to its defaults, so later tests log as usual."""
    stream = io.StringIO()
    try:
        yield stream
    finally:
        root = logging.getLogger()
        for handler in list(root.handlers):
            if getattr(handler, "stream", None) is stream:
                root.removeHandler(handler)
        structlog.reset_defaults()
        structlog.contextvars.clear_contextvars()


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    """Every non-blank line written to ``stream``, parsed as JSON."""
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
