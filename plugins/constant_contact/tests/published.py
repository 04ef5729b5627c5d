"""What the published OpenAPI description says, read at test time from
``../shared/reference/constant-contact-v3-openapi.yaml`` (beside the repository, read-only;
never copied into it). A missing file fails the test that needs it: the comparison with
the published description is the point of those tests, so they never skip.

The description is a 1 MB YAML file; these helpers read only the few blocks the tests
need, by indentation (no YAML library: the project does not depend on one).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[3]
DESCRIPTION = REPOSITORY.parent / "shared" / "reference" / "constant-contact-v3-openapi.yaml"


@functools.cache
def lines() -> tuple[str, ...]:
    if not DESCRIPTION.is_file():
        raise AssertionError(
            f"Constant Contact's published description is missing: expected {DESCRIPTION} "
            "(the read-only shared/ folder beside the repository)"
        )
    return tuple(DESCRIPTION.read_text(encoding="utf-8").splitlines())


def block(start: str, within: tuple[int, int] | None = None) -> tuple[int, int]:
    """The line range of the block whose first line is exactly ``start`` (indentation
    included), searched in ``within`` (default: the whole file)."""
    text = lines()
    low, high = within or (0, len(text))
    for number in range(low, high):
        if text[number] == start:
            indent = len(start) - len(start.lstrip())
            end = number + 1
            while end < high and (
                not text[end].strip() or len(text[end]) - len(text[end].lstrip()) > indent
            ):
                end += 1
            return number, end
    raise AssertionError(f"the published description has no line {start.strip()!r}")


@dataclass(frozen=True)
class Property:
    name: str
    type: str | None
    max_length: int | None


def schema_properties(schema: str) -> dict[str, Property]:
    """The ``properties`` of ``components.schemas.<schema>``: name, type, maxLength."""
    where = block(f"    {schema}:")
    props = block("      properties:", where)
    text = lines()
    found: dict[str, Property] = {}
    number = props[0] + 1
    while number < props[1]:
        line = text[number]
        if re.fullmatch(r" {8}[^ ].*:", line):
            name = line.strip()[:-1]
            inner = block(line, (number, props[1]))
            body = "\n".join(text[inner[0] : inner[1]])
            kind = re.search(r"^ {10}type: (\w+)", body, re.M)
            longest = re.search(r"^ {10}maxLength: (\d+)", body, re.M)
            found[name] = Property(
                name, kind[1] if kind else None, int(longest[1]) if longest else None
            )
            number = inner[1]
        else:
            number += 1
    return found


def schema_required(schema: str) -> list[str]:
    where = block(f"    {schema}:")
    text = lines()
    try:
        required = block("      required:", where)
    except AssertionError:
        return []
    return [line.strip()[2:] for line in text[required[0] + 1 : required[1]]]


def query_maximum(path: str, method: str, parameter: str) -> int:
    """The ``maximum`` of an operation's query parameter."""
    operation = block(f"    {method}:", block(f"  {path}:"))
    text = lines()
    for number in range(*operation):
        if text[number].strip() == f"name: {parameter}":
            for after in range(number, operation[1]):
                found = re.fullmatch(r"\s+maximum: (\d+)", text[after])
                if found:
                    return int(found[1])
    raise AssertionError(f"{method.upper()} {path} has no maximum for {parameter!r}")


def query_description(path: str, method: str, parameter: str) -> str:
    """The description text of an operation's query parameter (its first lines)."""
    operation = block(f"    {method}:", block(f"  {path}:"))
    text = lines()
    for number in range(*operation):
        if text[number].strip() == f"name: {parameter}":
            back = number
            while not text[back].lstrip().startswith("- description:"):
                back -= 1
            return " ".join(t.strip().strip('"\\') for t in text[back:number])
    raise AssertionError(f"{method.upper()} {path} has no parameter {parameter!r}")


def response_schema(path: str, method: str, status: str) -> str:
    """The component schema name an operation answers ``status`` with."""
    operation = block(f"    {method}:", block(f"  {path}:"))
    answer = block(f'        "{status}":', operation)
    text = "\n".join(lines()[answer[0] : answer[1]])
    found = re.search(r"\$ref: '#/components/schemas/(\w+)'", text)
    if found is None:
        raise AssertionError(f"{method.upper()} {path} {status} names no schema")
    return found[1]


def ref_of(schema: str, prop: str) -> str:
    """The schema a property of ``schema`` refers to (``$ref`` or ``items.$ref``)."""
    where = block(f"    {schema}:")
    props = block("      properties:", where)
    inner = block(f"        {prop}:", props)
    text = "\n".join(lines()[inner[0] : inner[1]])
    found = re.search(r"\$ref: '#/components/schemas/(\w+)'", text)
    if found is None:
        raise AssertionError(f"{schema}.{prop} refers to no schema")
    return found[1]
