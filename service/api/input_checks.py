"""The documented limits of what the API accepts and stores, checked before anything is written.

Limits (README, "Limits of what is stored"):

* names (segments, export and connection display names, attribute names,
  mapping sources and targets): at most :data:`NAME_MAX_CHARS` characters;
* a segment description: at most :data:`DESCRIPTION_MAX_CHARS`; a profile id:
  at most :data:`PROFILE_ID_MAX_CHARS`;
* one text value inside profile attributes or settings: at most
  :data:`VALUE_MAX_CHARS`; lists and objects nested at most
  :data:`MAX_NESTING` levels inside one attribute or setting;
* all text is Unicode text: a lone surrogate (``"\\ud800"`` in JSON), which
  cannot be stored as UTF-8, is refused wherever it appears in a mutation's
  input (:class:`RefuseLoneSurrogates`, given to every mutation).

Each failure is a userError naming the field, never echoing the value.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import strawberry
from strawberry.extensions import FieldExtension
from strawberry.extensions.field_extension import AsyncExtensionResolver, SyncExtensionResolver
from strawberry.schema.name_converter import NameConverter
from strawberry.types.base import get_object_definition

from service.api.errors import UserError, UserInputError, bad_user_input, user_error

NAME_MAX_CHARS = 200
DESCRIPTION_MAX_CHARS = 2_000
PROFILE_ID_MAX_CHARS = 200
VALUE_MAX_CHARS = 10_000
MAX_NESTING = 10

INVALID_TEXT = "INVALID_TEXT"
TOO_LONG = "TOO_LONG"
NESTED_TOO_DEEP = "NESTED_TOO_DEEP"

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def has_lone_surrogate(text: str) -> bool:
    """True when ``text`` cannot be encoded as UTF-8 (JSON let a lone surrogate through)."""
    return _LONE_SURROGATE.search(text) is not None


def printable(part: str) -> str:
    """``part`` safe to put in a response or a log line (surrogates escaped)."""
    return part.encode("utf-8", "backslashreplace").decode("utf-8")


def text_problems(
    value: str, field: Sequence[str], what: str, max_chars: int = NAME_MAX_CHARS
) -> list[UserError]:
    """A name or other text of ``what``: Unicode text of at most ``max_chars`` characters."""
    if has_lone_surrogate(value):
        return [_not_text(field, what)]
    if len(value) > max_chars:
        return [
            user_error(
                list(field),
                f"{what} is {len(value)} characters long, more than the {max_chars} allowed",
                TOO_LONG,
            )
        ]
    return []


def check_text(value: str, field: Sequence[str], what: str, max_chars: int = NAME_MAX_CHARS) -> str:
    """``value`` when :func:`text_problems` finds nothing; raises UserInputError otherwise."""
    problems = text_problems(value, field, what, max_chars)
    if problems:
        raise UserInputError.of(problems)
    return value


def search_text(search: str | None) -> str | None:
    """A list's ``search`` argument: None when empty; BAD_USER_INPUT when not Unicode text."""
    if search and has_lone_surrogate(search):
        raise bad_user_input("search is not valid Unicode text: it holds a lone surrogate")
    return search or None


def json_object_problems(value: dict[str, Any], field: Sequence[str], what: str) -> list[UserError]:
    """The limits of a free-form object (profile attributes, settings), at most one per key.

    Keys are names; text values are at most :data:`VALUE_MAX_CHARS`; each
    key's value nests lists and objects at most :data:`MAX_NESTING` deep.
    The walk is iterative and stops at the limit, whatever the depth sent.
    """
    problems: list[UserError] = []
    for key, item in value.items():
        where = [*field, printable(str(key))]
        problem = _key_problem(str(key), where, what) or _value_problem(item, where, what)
        if problem is not None:
            problems.append(problem)
    return problems


def _key_problem(key: str, where: list[str], what: str) -> UserError | None:
    problems = text_problems(key, where, f"the name of {what} {printable(key)[:40]!r}")
    return problems[0] if problems else None


def _value_problem(value: Any, where: list[str], what: str) -> UserError | None:
    stack: list[tuple[Any, list[str], int]] = [(value, where, 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            if has_lone_surrogate(item):
                return _not_text(path, f"{what} {where[-1]!r}")
            if len(item) > VALUE_MAX_CHARS:
                return user_error(
                    path,
                    f"a text value of {what} {where[-1]!r} is {len(item)} characters long, "
                    f"more than the {VALUE_MAX_CHARS} allowed",
                    TOO_LONG,
                )
        elif isinstance(item, dict | list):
            if depth >= MAX_NESTING:
                return user_error(
                    where,
                    f"{what} {where[-1]!r} nests lists and objects more than {MAX_NESTING} "
                    "levels deep",
                    NESTED_TOO_DEEP,
                )
            if isinstance(item, dict):
                for key, inner in item.items():
                    inner_path = [*path, printable(str(key))]
                    if has_lone_surrogate(str(key)):
                        return _not_text(inner_path, f"a name inside {what} {where[-1]!r}")
                    stack.append((inner, inner_path, depth + 1))
            else:
                stack.extend((inner, [*path, str(n)], depth + 1) for n, inner in enumerate(item))
    return None


def _not_text(field: Sequence[str], what: str) -> UserError:
    return user_error(
        list(field),
        f"{what} is not valid Unicode text: it holds a lone surrogate (such as \\ud800)",
        INVALID_TEXT,
    )


# -- every mutation: no lone surrogate anywhere in the input -----------------------


def lone_surrogate_path(value: Any, names: NameConverter) -> list[str] | None:
    """The path (GraphQL names, list positions, object keys) of the first lone surrogate."""
    stack: list[tuple[Any, list[str]]] = [(value, [])]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if has_lone_surrogate(item):
                return path
        elif isinstance(item, dict):
            for key, inner in item.items():
                if has_lone_surrogate(str(key)):
                    return [*path, printable(str(key))]
                stack.append((inner, [*path, str(key)]))
        elif isinstance(item, list | tuple):
            stack.extend((inner, [*path, str(n)]) for n, inner in enumerate(item))
        else:
            definition = get_object_definition(type(item))
            if definition is not None and definition.is_input:
                for field in definition.fields:
                    name = names.get_graphql_name(field)
                    stack.append((getattr(item, field.python_name, None), [*path, name]))
    return None


class RefuseLoneSurrogates(FieldExtension):
    """A mutation whose ``input`` holds a lone surrogate answers an ``INVALID_TEXT`` userError.

    Such a string cannot be stored (UTF-8 has no encoding for it); caught
    here, once, it never reaches a store as an "Unexpected error." or a
    misleading conflict.
    """

    def _check(self, info: strawberry.Info, kwargs: dict[str, Any]) -> None:
        path = lone_surrogate_path(kwargs.get("input"), info.schema.config.name_converter)
        if path is not None:
            where = ".".join(path) or "input"
            raise UserInputError.of([_not_text(path, f"input field {where!r}")])

    def resolve(
        self, next_: SyncExtensionResolver, source: Any, info: strawberry.Info, **kwargs: Any
    ) -> Any:
        self._check(info, kwargs)
        return next_(source, info, **kwargs)

    async def resolve_async(
        self, next_: AsyncExtensionResolver, source: Any, info: strawberry.Info, **kwargs: Any
    ) -> Any:
        self._check(info, kwargs)
        return await next_(source, info, **kwargs)
