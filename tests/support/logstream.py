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
    """A stream for ``configure_logging(..., stream=...)``. On exit every logger is as it
    was before (level, handlers, filters, propagation: ``configure_logging`` sets the
    root to INFO, and pytest's capture would then keep every INFO record of later tests)
    and structlog is back to its defaults, so later tests log as usual."""
    stream = io.StringIO()
    saved = [(logger, _state(logger)) for logger in _loggers()]
    try:
        yield stream
    finally:
        for logger, (level, propagate, handlers, filters) in saved:
            logger.setLevel(level)
            logger.propagate = propagate
            logger.handlers[:] = handlers
            logger.filters[:] = filters
        structlog.reset_defaults()
        structlog.contextvars.clear_contextvars()


def _loggers() -> list[logging.Logger]:
    made = logging.Logger.manager.loggerDict.values()
    return [logging.getLogger(), *(lg for lg in made if isinstance(lg, logging.Logger))]


def _state(
    logger: logging.Logger,
) -> tuple[int, bool, list[logging.Handler], list[Any]]:
    return logger.level, logger.propagate, list(logger.handlers), list(logger.filters)


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    """Every non-blank line written to ``stream``, parsed as JSON."""
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
