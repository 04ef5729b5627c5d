"""Bounds on the work of one GraphQL operation, whatever carries it (HTTP or the websocket).

Every bound refuses the operation before anything executes, with an error
naming the limit and the value found:

- tokens (``SEGPORT_GRAPHQL_MAX_TOKENS``): parsing stops past them;
- depth (``SEGPORT_MAX_QUERY_DEPTH``) and aliases (``SEGPORT_GRAPHQL_MAX_ALIASES``):
  strawberry's own validation rules;
- cost (``SEGPORT_GRAPHQL_MAX_COST``): field resolutions counted through
  nested list sizes, :mod:`service.api.operation_cost`.

The query's size over the websocket (``SEGPORT_GRAPHQL_MAX_QUERY_BYTES``) is
checked by the transport, :mod:`service.api.graphql_http`; over HTTP the
request body limit bounds it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)

from service.api.operation_cost import cost_rule
from service.settings import Settings


@dataclass(frozen=True, slots=True)
class OperationLimits:
    max_depth: int
    max_aliases: int
    max_tokens: int
    max_cost: int
    page_size: int
    """What an omitted ``first`` (or any unpaged list) counts as in the cost."""

    @classmethod
    def of(cls, settings: Settings) -> OperationLimits:
        return cls(
            max_depth=settings.max_query_depth,
            max_aliases=settings.graphql_max_aliases,
            max_tokens=settings.graphql_max_tokens,
            max_cost=settings.graphql_max_cost,
            page_size=settings.max_page_size,
        )


class OperationCostLimiter(SchemaExtension):
    """Adds the cost rule, made for this operation's variables, to its validation."""

    def __init__(self, max_cost: int, page_size: int) -> None:
        self.max_cost = max_cost
        self.page_size = page_size

    def on_validate(self) -> Iterator[None]:
        # Made only when the document is validated (the rule is a class made for these
        # variables, and a class lives in a reference cycle): a document the DocumentCache
        # knows valid for these variables, or one already refused, needs none.
        context = self.execution_context
        if context.pre_execution_errors is None:
            rule = cost_rule(self.max_cost, self.page_size, context.variables)
            context.validation_rules = (*context.validation_rules, rule)
        yield


def limiting_extensions(limits: OperationLimits) -> list[Callable[[], SchemaExtension]]:
    """Factories (each operation gets fresh extension instances) for every bound.

    The depth and alias limiters each make a new rule class when constructed;
    classes live in reference cycles, so their rules are made once here and
    each operation only adds them.
    """
    fixed_rules = [
        *QueryDepthLimiter(max_depth=limits.max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=limits.max_aliases).validation_rules,
    ]
    return [
        lambda: MaxTokensLimiter(max_token_count=limits.max_tokens),
        lambda: AddValidationRules(fixed_rules),
        lambda: OperationCostLimiter(limits.max_cost, limits.page_size),
    ]
