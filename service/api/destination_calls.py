"""Calling a destination while a GraphQL client waits: list pickers, remote setting checks.

A run may wait hours for a destination's quota; a person in front of a form
may not. :func:`call_destination` gives the destination a context whose
``sleep`` refuses long waits and bounds the whole call, and turns every way
the destination can fail into a :class:`DestinationUnanswered` with a stable
code and a message fit to show (the destination's own words, or what could
not be reached), never a masked crash and never a token.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import httpx
import structlog

from service import domain
from service.api.execution_gate import outside_gate
from service.connections.context import destination_context
from service.connections.destinations import DestinationAccess
from service.plugins.api import (
    AuthorizationLost,
    Destination,
    DestinationContext,
    DestinationError,
    TransientDestinationError,
)

log = structlog.get_logger(__name__)

T = TypeVar("T")

CALL_TIMEOUT_SECONDS = 20.0
"""Longest a destination call may take while a client waits for the answer."""
LONGEST_WAIT_SECONDS = 5.0
"""Longest backoff or throttling pause accepted inside such a call; longer ones fail fast."""

NEEDS_REAUTHORIZATION = "NEEDS_REAUTHORIZATION"
DESTINATION_ERROR = "DESTINATION_ERROR"
DESTINATION_UNAVAILABLE = "DESTINATION_UNAVAILABLE"


class DestinationUnanswered(Exception):
    """The destination could not answer; ``code`` is one of the constants above."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _impatient_sleep(destination: Destination) -> Callable[[float], Awaitable[None]]:
    async def sleep(seconds: float) -> None:
        if seconds > LONGEST_WAIT_SECONDS:
            raise TransientDestinationError(
                f"{destination.display_name} asks to wait {seconds:.0f} seconds before "
                "answering; try again later"
            )
        await asyncio.sleep(seconds)

    return sleep


async def call_destination(
    access: DestinationAccess,
    connection: domain.Connection,
    destination: Destination,
    call: Callable[[DestinationContext], Awaitable[T]],
    *,
    export_settings: Mapping[str, Any] | None = None,
) -> T:
    """``await call(ctx)`` with a context for ``connection``; DestinationUnanswered on failure.

    An ``AuthorizationLost`` has already marked the connection
    NEEDS_REAUTHORIZATION (the credential source does that) when a refresh was
    refused.
    """
    name = destination.display_name
    pause = await access.limiters.for_destination(destination).pause()
    if pause is not None:
        # Waiting for the pause to end is no answer for someone in front of a form.
        raise DestinationUnanswered(
            DESTINATION_UNAVAILABLE,
            f"requests to {name} are paused until {pause.until:%Y-%m-%d %H:%M:%S} UTC "
            f"({pause.reason.rstrip('.')}); try again then, or ask an admin to lift the pause",
        )
    ctx = await destination_context(access, connection, export_settings=export_settings)
    ctx = dataclasses.replace(ctx, sleep=_impatient_sleep(destination))
    try:
        async with outside_gate(), asyncio.timeout(CALL_TIMEOUT_SECONDS):
            return await call(ctx)
    except AuthorizationLost as exc:
        raise DestinationUnanswered(NEEDS_REAUTHORIZATION, str(exc)) from None
    except TransientDestinationError as exc:
        raise DestinationUnanswered(DESTINATION_UNAVAILABLE, _naming(name, str(exc))) from None
    except DestinationError as exc:
        raise DestinationUnanswered(DESTINATION_ERROR, _naming(name, str(exc))) from None
    except (httpx.HTTPError, TimeoutError) as exc:
        log.warning(
            "destination_call_unanswered",
            connection_id=connection.id,
            destination=destination.key,
            error=type(exc).__name__,
        )
        raise DestinationUnanswered(
            DESTINATION_UNAVAILABLE,
            f"{name} did not answer ({type(exc).__name__}); try again later",
        ) from None


def _naming(name: str, words: str) -> str:
    """The destination's words, prefixed with its name unless they say it already."""
    return words if name in words else f"{name}: {words}"
