"""How the API reports failures: userErrors for expected ones, coded top-level errors otherwise.

* Expected failures of a mutation (validation, not found, conflict, forbidden
  for one object) raise :class:`UserInputError`; :class:`UserErrorsPayload`,
  which :mod:`service.api.schema` gives every mutation, answers them as the
  mutation's payload with only ``userErrors`` set.
* A caller without a valid token gets a top-level error coded
  ``UNAUTHENTICATED``; a role that may not do the thing gets ``FORBIDDEN``;
  bad arguments of a query get ``BAD_USER_INPUT``.
* Anything else is masked by :mod:`service.api.extensions`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import FieldExtension
from strawberry.extensions.field_extension import AsyncExtensionResolver, SyncExtensionResolver
from strawberry.types.base import get_object_definition
from strawberry.types.field import StrawberryField

UNAUTHENTICATED = "UNAUTHENTICATED"
FORBIDDEN = "FORBIDDEN"
BAD_USER_INPUT = "BAD_USER_INPUT"
INTERNAL = "INTERNAL_SERVER_ERROR"
UNEXPECTED_MESSAGE = "Unexpected error."


@strawberry.type(description="An expected failure of a mutation; nothing was changed.")
class UserError:
    field: list[str] | None = strawberry.field(
        description="Path of the offending input field, relative to `input` "
        '(e.g. ["profiles", "3", "attributes"]); null when not about one field.'
    )
    message: str
    code: str = strawberry.field(description="Stable machine-readable reason, e.g. NOT_FOUND.")


def _path(field: str | Sequence[str] | None) -> list[str] | None:
    if field is None:
        return None
    if isinstance(field, str):
        return [field]
    return [str(part) for part in field]


class UserInputError(Exception):
    """One or more expected failures, reported as the mutation payload's ``userErrors``."""

    def __init__(
        self, field: str | Sequence[str] | None, message: str, code: str = "INVALID"
    ) -> None:
        super().__init__(message)
        self.errors = [UserError(field=_path(field), message=message, code=code)]

    @classmethod
    def of(cls, errors: Sequence[UserError]) -> UserInputError:
        """Several failures at once (every problem of an input is reported, not just the first)."""
        first = errors[0]
        exc = cls(first.field, first.message, first.code)
        exc.errors = list(errors)
        return exc


def user_error(field: str | Sequence[str] | None, message: str, code: str = "INVALID") -> UserError:
    return UserError(field=_path(field), message=message, code=code)


class UserErrorsPayload(FieldExtension):
    """A mutation's :class:`UserInputError` becomes its payload, with only ``userErrors`` set.

    The payload type is the mutation's own (read from the field when the
    schema is built, which fails for a payload without ``userErrors``).
    """

    def __init__(self) -> None:
        self._payload: Callable[..., Any] | None = None

    def apply(self, field: StrawberryField) -> None:
        payload = field.type
        definition = get_object_definition(payload)
        if definition is None or not any(f.python_name == "user_errors" for f in definition.fields):
            raise TypeError(f"mutation {field.python_name!r} must return a payload with userErrors")
        self._payload = definition.origin

    def _answer(self, exc: UserInputError) -> Any:
        assert self._payload is not None, "applied when the schema is built"
        return self._payload(user_errors=exc.errors)

    def resolve(
        self, next_: SyncExtensionResolver, source: Any, info: strawberry.Info, **kwargs: Any
    ) -> Any:
        try:
            return next_(source, info, **kwargs)
        except UserInputError as exc:
            return self._answer(exc)

    async def resolve_async(
        self, next_: AsyncExtensionResolver, source: Any, info: strawberry.Info, **kwargs: Any
    ) -> Any:
        try:
            return await next_(source, info, **kwargs)
        except UserInputError as exc:
            return self._answer(exc)


def unauthenticated(reason: str) -> GraphQLError:
    return GraphQLError(f"Not authenticated: {reason}.", extensions={"code": UNAUTHENTICATED})


def forbidden(what: str) -> GraphQLError:
    return GraphQLError(f"Your role may not {what}.", extensions={"code": FORBIDDEN})


def bad_user_input(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": BAD_USER_INPUT})
