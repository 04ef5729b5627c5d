"""Structured logs: JSON lines with context, stdlib loggers included, and nothing secret."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from service.observability.logging import REDACTED, configure_logging
from service.settings import Settings, SettingsError
from tests.support.logstream import json_lines, open_log_stream


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    with open_log_stream() as stream:
        yield stream


def configure(stream: io.StringIO, **settings: Any) -> None:
    configure_logging(Settings(log_format="json", **settings), stream=stream)


def test_lines_are_json_with_level_timestamp_logger_and_bound_context(
    log_stream: io.StringIO,
) -> None:
    configure(log_stream)
    structlog.contextvars.bind_contextvars(request_id="req-1", run_id="run-9")
    structlog.get_logger("service.runs").info("run_started", export_id="exp-3")
    (line,) = json_lines(log_stream)
    assert line["event"] == "run_started"
    assert line["level"] == "info"
    assert line["logger"] == "service.runs"
    assert line["request_id"] == "req-1"
    assert line["run_id"] == "run-9"
    assert line["export_id"] == "exp-3"
    assert line["timestamp"].endswith("Z")


def test_stdlib_loggers_like_uvicorn_and_arq_go_through_the_same_pipeline(
    log_stream: io.StringIO,
) -> None:
    configure(log_stream)
    structlog.contextvars.bind_contextvars(request_id="req-2")
    logging.getLogger("uvicorn.error").warning("Shutting down %s", "now")
    logging.getLogger("arq.worker").info("job started")
    uvicorn_line, arq_line = json_lines(log_stream)
    assert uvicorn_line["event"] == "Shutting down now"
    assert uvicorn_line["level"] == "warning"
    assert uvicorn_line["request_id"] == "req-2"
    assert arq_line["logger"] == "arq.worker"


def test_level_setting_filters_lower_levels(log_stream: io.StringIO) -> None:
    configure(log_stream, log_level="WARNING")
    log = structlog.get_logger("x")
    log.info("quiet")
    log.warning("loud")
    assert [line["event"] for line in json_lines(log_stream)] == ["loud"]


def test_secret_named_keys_are_redacted_at_any_depth_but_counts_are_kept(
    log_stream: io.StringIO,
) -> None:
    configure(log_stream)
    structlog.get_logger("x").info(
        "token_exchanged",
        access_token="at-SECRET-1",
        refresh_token="rt-SECRET-2",
        client_secret="cs-SECRET-3",
        code_verifier="cv-SECRET-4",
        headers={"Authorization": "Bearer hdr-SECRET-5", "Accept": "application/json"},
        body={"contacts": [{"email": "jane@example.com", "password": "pw-SECRET-6"}]},
        emails_skipped=3,
    )
    raw = log_stream.getvalue()
    for secret in ("SECRET-1", "SECRET-2", "SECRET-3", "SECRET-4", "SECRET-5", "SECRET-6"):
        assert secret not in raw
    assert "jane@example.com" not in raw
    (line,) = json_lines(log_stream)
    assert line["access_token"] == REDACTED
    assert line["headers"]["Accept"] == "application/json"
    assert line["emails_skipped"] == 3


def test_secret_looking_text_is_redacted_inside_messages_and_exceptions(
    log_stream: io.StringIO,
) -> None:
    configure(log_stream)
    log = structlog.get_logger("x")
    log.info(
        "calling https://auth.example/token?code=oauth-SECRET-1&state=ok with Bearer jwt-SECRET-2"
    )
    log.info("connecting", url="mongodb://segport:db-SECRET-3@mongo:27017/segport")
    try:
        raise RuntimeError("refused for customer bob@example.org with refresh_token=rt-SECRET-4")
    except RuntimeError:
        log.exception("refresh_failed")
    raw = log_stream.getvalue()
    for secret in ("SECRET-1", "SECRET-2", "SECRET-3", "SECRET-4", "bob@example.org"):
        assert secret not in raw, secret
    lines = json_lines(log_stream)
    assert lines[1]["url"] == f"mongodb://segport:{REDACTED}@mongo:27017/segport"
    assert "RuntimeError" in lines[2]["exception"]


def test_stdlib_records_are_redacted_too(log_stream: io.StringIO) -> None:
    configure(log_stream)
    logging.getLogger("httpx").warning("POST https://x/token?client_secret=cs-SECRET-7 failed")
    assert "SECRET-7" not in log_stream.getvalue()


def test_console_format_is_not_json(log_stream: io.StringIO) -> None:
    configure_logging(Settings(log_format="console"), stream=log_stream)
    structlog.get_logger("x").info("hello", access_token="at-SECRET-8")
    text = log_stream.getvalue()
    assert "hello" in text
    assert "SECRET-8" not in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


def test_auto_format_writes_json_when_the_stream_is_not_a_terminal(log_stream: io.StringIO) -> None:
    configure_logging(Settings(log_format="auto"), stream=log_stream)
    structlog.get_logger("x").info("piped")
    assert json_lines(log_stream)[0]["event"] == "piped"


def test_reconfiguring_replaces_the_handler_instead_of_doubling_lines(
    log_stream: io.StringIO,
) -> None:
    configure(log_stream)
    configure(log_stream)
    structlog.get_logger("x").info("once")
    assert len(json_lines(log_stream)) == 1


def test_unknown_log_level_is_refused_naming_the_value(log_stream: io.StringIO) -> None:
    with pytest.raises(SettingsError, match=r"SEGPORT_LOG_LEVEL 'LOUD' is not one of DEBUG"):
        configure_logging(Settings(log_level="LOUD"), stream=log_stream)


def test_uvicorns_color_message_copy_is_dropped_but_other_extras_kept(
    log_stream: io.StringIO,
) -> None:
    configure(log_stream)
    uvicorn_error = logging.getLogger("uvicorn.error")
    # An in-process uvicorn of an earlier test may have raised this logger's level.
    level = uvicorn_error.level
    uvicorn_error.setLevel(logging.INFO)
    try:
        uvicorn_error.info(
            "Started server process [%d]",
            42,
            extra={"color_message": "Started server process [\x1b[36m%d\x1b[0m]", "worker": "w1"},
        )
    finally:
        uvicorn_error.setLevel(level)
    (line,) = json_lines(log_stream)
    assert line["event"] == "Started server process [42]"
    assert "color_message" not in line
    assert line["worker"] == "w1"
