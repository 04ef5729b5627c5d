"""Parsed and validated documents, remembered across operations (frontends poll the same few).

Parsing and validating a document is most of what a small operation costs,
and both leave garbage in reference cycles behind them: tokens link to their
neighbours, and each of graphql-core's validation visitors caches its own
bound methods (``Visitor.enter_leave_map``). The pages a frontend polls send
the same text again and again, so both are done once per text:

- the parsed document per query text (it is never changed by execution);
- that a document passed validation, per query text, operation name and
  variables (the cost rule reads ``first`` from the variables, so their
  values belong to the key). Only successes are remembered: a refused
  document is validated again, and its errors are never shared.

Both caches are bounded (entries and the size of what is remembered), so
distinct texts cannot grow memory without limit. A document is only looked
up after the Authentication extension: a caller without a valid token is
still refused before anything is validated.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from graphql import DocumentNode
from strawberry.extensions import SchemaExtension

from service.api.lru import Lru

CACHED_DOCUMENTS = 256
"""Distinct query texts remembered (parsed and validated)."""
LARGEST_CACHED_TEXT = 20_000
"""Characters of query text (and of its variables) past which nothing is remembered."""


class DocumentMemory:
    """The process's remembered documents (one per schema)."""

    def __init__(self, size: int = CACHED_DOCUMENTS) -> None:
        self.parsed: Lru[str, DocumentNode] = Lru(size)
        self.valid: Lru[tuple[str, str | None, str], bool] = Lru(size)


def _variables_key(variables: object) -> str | None:
    try:
        text = json.dumps(variables, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return None
    return text if len(text) <= LARGEST_CACHED_TEXT else None


class DocumentCache(SchemaExtension):
    """Reuse the parsed document and a past successful validation of the same operation."""

    def __init__(self, memory: DocumentMemory) -> None:
        self.memory = memory

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        query = context.query
        if query is None or len(query) > LARGEST_CACHED_TEXT:
            yield
            return
        document = self.memory.parsed.get(query)
        if document is not None:
            context.graphql_document = document
            yield
            return
        # Parsed by strawberry, with the limits' options (MaxTokensLimiter's max_tokens):
        # a text over them is refused as before, and never remembered.
        yield
        if context.graphql_document is not None:
            self.memory.parsed.put(query, context.graphql_document)

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        key = None
        if context.pre_execution_errors is None and context.query is not None:
            variables = _variables_key(context.variables or {})
            if variables is not None and len(context.query) <= LARGEST_CACHED_TEXT:
                key = (context.query, context.operation_name, variables)
        if key is not None and self.memory.valid.get(key):
            context.pre_execution_errors = []
            yield
            return
        yield
        if key is not None and context.pre_execution_errors == []:
            self.memory.valid.put(key, True)
