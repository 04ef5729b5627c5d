"""Schema extensions: authentication of every operation and masking of unexpected errors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import structlog
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from service.access.auth import AuthenticationError
from service.api.errors import INTERNAL, UNEXPECTED_MESSAGE, unauthenticated

log = structlog.get_logger(__name__)


class Authentication(SchemaExtension):
    """Verify the caller's token before the document is validated.

    Without a valid token nothing is validated and no resolver runs: the
    operation answers one ``UNAUTHENTICATED`` error and ``data: null``. Skipping
    validation is the point: its errors ("Cannot query field 'x' on type 'Query'.
    Did you mean 'viewer'?") would teach a caller without a token the schema.
    """

    async def on_validate(self) -> AsyncIterator[None]:
        context = self.execution_context.context
        try:
            await context.authenticate()
        except AuthenticationError as exc:
            # Errors already present make strawberry skip validation and execution.
            self.execution_context.pre_execution_errors = [unauthenticated(str(exc))]
        yield


def is_unexpected(error: GraphQLError) -> bool:
    """An exception our code did not mean to raise (a bug, a database outage, ...).

    GraphQL's own errors (syntax, validation, coercion of variables) and the
    coded errors we raise on purpose are expected; so is a value error from
    coercing a variable (it has no path: no resolver ran).
    """
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):
        return False
    return not (error.path is None and isinstance(original, ValueError | TypeError))


def request_id_of(context: Any) -> str | None:
    return getattr(context, "request_id", None)


def log_unexpected(errors: list[GraphQLError], context: Any) -> None:
    for error in errors:
        if is_unexpected(error):
            log.error(
                "graphql_unexpected_error",
                request_id=request_id_of(context),
                path=error.path,
                exc_info=error.original_error,
            )


class MaskUnexpectedErrors(SchemaExtension):
    """Replace unexpected errors by "Unexpected error." and the request id to quote."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is None or not result.errors:
            return
        request_id = request_id_of(self.execution_context.context)
        result.errors = [
            GraphQLError(
                UNEXPECTED_MESSAGE,
                nodes=error.nodes,
                path=error.path,
                extensions={"code": INTERNAL, "requestId": request_id},
            )
            if is_unexpected(error)
            else error
            for error in result.errors
        ]
