"""Structured logging: structlog for our code, the same pipeline for stdlib loggers (uvicorn, arq).

:func:`configure_logging` is called once at the start of every CLI command.
Lines are JSON when ``SEGPORT_LOG_FORMAT=json`` or when stderr is not a
terminal (containers, log shippers), and human-readable in a terminal.
Context bound with ``structlog.contextvars`` (request id, run id, export id) is
merged into every line, stdlib ones included.

Nothing secret may reach a log line: :func:`redact_secrets` runs last before
rendering and blanks values whose key names a secret (``token``, ``password``,
``authorization``, ``email``...) and secret-looking parts of any string (bearer
tokens, passwords in URLs, OAuth codes and tokens in query strings).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from service.settings import Settings, SettingsError

REDACTED = "[redacted]"

SECRET_KEY_PARTS = (
    "token",
    "secret",
    "authorization",
    "password",
    "passwd",
    "code_verifier",
    "api_key",
    "apikey",
    "cookie",
    "credential",
    "encryption_key",
    "private_key",
    "email",
)
"""A key containing any of these (case-insensitive) has its string value redacted.

``email`` is here because e-mail addresses are customer data, not secrets, but
must not spread into log storage either.
"""

_EXACT_SECRET_KEYS = frozenset({"code", "state", "jwt"})
"""Keys secret only as the whole name (``code`` is the OAuth code; ``error_code`` is not)."""

_VALUE_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization header values.
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), rf"\1 {REDACTED}"),
    # Passwords in URLs: scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^:/@\s]*):[^@/\s]+@"), rf"\1:{REDACTED}@"),
    # OAuth and API secrets in query strings or form bodies.
    (
        re.compile(
            r"(?i)\b(code|code_verifier|access_token|refresh_token|id_token|client_secret"
            r"|api_key|apikey|password|token)=[^&\s\"']+"
        ),
        rf"\1={REDACTED}",
    ),
    # E-mail addresses.
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"), REDACTED),
)

_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# Loggers of libraries we run inside; they log through the root handler configured here.
_STDLIB_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "arq", "httpx", "pymongo")


def _is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return lowered in _EXACT_SECRET_KEYS or any(part in lowered for part in SECRET_KEY_PARTS)


def redact_text(text: str) -> str:
    """``text`` with bearer tokens, URL passwords, secret query values and e-mails blanked."""
    for pattern, replacement in _VALUE_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redact(value: Any, secret: bool) -> Any:
    if isinstance(value, str | bytes):
        if secret:
            return REDACTED
        return redact_text(value) if isinstance(value, str) else value
    if isinstance(value, Mapping):
        return {k: _redact(v, secret or _is_secret_key(str(k))) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact(v, secret) for v in value]
    # Numbers and booleans (e.g. ``emails_skipped=3``) are counts, not secrets.
    return value


def redact_secrets(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: redact secret-named keys and secret-looking text, recursively."""
    for key in list(event_dict):
        event_dict[key] = _redact(event_dict[key], _is_secret_key(key) and key != "event")
    return event_dict


def _render_as_json(settings: Settings, stream: TextIO) -> bool:
    if settings.log_format == "json":
        return True
    if settings.log_format == "console":
        return False
    return not stream.isatty()


def _level(settings: Settings) -> int:
    name = settings.log_level.strip().upper()
    if name not in _LEVELS:
        raise SettingsError(
            f"SEGPORT_LOG_LEVEL {settings.log_level!r} is not one of {', '.join(_LEVELS)}"
        )
    return int(getattr(logging, name))


def shared_processors() -> list[Processor]:
    """What every line goes through, from structlog or from a stdlib logger."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]


class AccessPathOnly(logging.Filter):
    """Drops the query string from uvicorn's access lines.

    Query strings carry what must not be logged: ``/oauth/callback?code=..&state=..``,
    or a GraphQL GET's ``variables`` with customer e-mails. The path and status are
    what an access line is for; the redaction processor stays as the safety net.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        # HTTP lines pass (client, method, path?query, version, status), websocket
        # lines (client, path?query): the path is the argument that starts with "/".
        if isinstance(record.args, tuple):
            record.args = tuple(_path_only(arg) for arg in record.args)
        return True


def _path_only(value: object) -> object:
    if isinstance(value, str) and value.startswith("/"):
        return value.split("?", 1)[0]
    return value


class _SegportHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The root handler this module installs (found again and replaced on reconfiguration)."""


def _drop_color_message(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    event_dict.pop("color_message", None)
    return event_dict


def configure_logging(settings: Settings, stream: TextIO | None = None) -> None:
    """Route structlog and stdlib logging to ``stream`` (stderr), JSON or console.

    Safe to call again (tests, the demo): the previous handler is replaced.
    Raises :class:`~service.settings.SettingsError` for an unknown log level.
    """
    out = stream if stream is not None else sys.stderr
    level = _level(settings)
    as_json = _render_as_json(settings, out)
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    # Exceptions become text before redaction so their messages are scanned too.
    final: list[Processor] = [structlog.processors.format_exc_info, redact_secrets, renderer]

    handler = _SegportHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                *shared_processors(),
                # uvicorn's ``color_message`` repeats the message with terminal escapes.
                structlog.stdlib.ExtraAdder(),
                _drop_color_message,
            ],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _SegportHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in _STDLIB_LOGGERS:
        library_logger = logging.getLogger(name)
        library_logger.handlers.clear()
        library_logger.propagate = True
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, AccessPathOnly) for f in access.filters):
        access.addFilter(AccessPathOnly())
    # httpx logs every request URL at INFO; URLs can carry OAuth codes: keep it at WARNING.
    logging.getLogger("httpx").setLevel(max(level, logging.WARNING))
    logging.getLogger("httpcore").setLevel(max(level, logging.WARNING))

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared_processors(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: reconfiguring (tests, demo) must reach loggers made at import time.
        cache_logger_on_first_use=False,
    )
