"""The cost of an operation: how many field resolutions it may cause, refused past a limit.

Depth and aliases have strawberry's own limiters; neither sees that
``exports(first: 100) { edges { node { runs(first: 100) { ... } } } }`` asks
for ten thousand runs. The cost counts every field once for each item of
every list around it:

- a list field with a ``first`` argument (``ExportRun.errors``) has
  ``first`` items; a field with ``first`` that returns a connection gives
  that number to the list below it (the connection's ``edges``);
- ``first`` is counted as the server clamps it, at most the page size
  (``SEGPORT_MAX_PAGE_SIZE``); an omitted ``first`` counts as a full page;
- a list without a ``first`` argument (an export's segments, a destination's
  settings) counts as :data:`UNPAGED_LIST_ITEMS` items;
- introspection (``__schema``, ``__type``, ``__typename``) costs nothing: the
  schema is small and fixed.

``first`` is read from the literal or from the operation's variables (the
rule is made per operation, with them), so the cost is known before anything
executes. Each fragment is costed once per context, so the count is linear in
the document's size whatever its fragments spread.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    VariableNode,
    get_named_type,
)

OPERATION_TOO_COSTLY = "OPERATION_TOO_COSTLY"
UNPAGED_LIST_ITEMS = 10
"""What a list without ``first`` counts as (an export's segments, a destination's settings):
small lists of the data model, not pages of a collection."""
DEEPEST_COSTED = 64
"""Selections deeper than this are not costed further (the depth limit refuses them anyway);
it keeps the count's recursion far from Python's limit."""


@dataclass
class _Costing:
    """The cost of one document's selections, given the page size and the variables."""

    schema: GraphQLSchema
    fragments: Mapping[str, FragmentDefinitionNode]
    page_size: int
    variables: Mapping[str, Any]
    _fragment_costs: dict[tuple[str, int | None], int] = field(default_factory=dict)
    _costing: set[str] = field(default_factory=set)

    def selections(
        self,
        selection_set: SelectionSetNode | None,
        parent: GraphQLNamedType | None,
        page: int | None,
        depth: int,
    ) -> int:
        """The cost of resolving ``selection_set`` once; ``page`` sizes the first list in it."""
        if selection_set is None or depth > DEEPEST_COSTED:
            return 0
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self._field(selection, parent, page, depth)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                on = self.schema.get_type(condition.name.value) if condition else parent
                total += self.selections(selection.selection_set, on, page, depth + 1)
            elif isinstance(selection, FragmentSpreadNode):
                total += self._fragment(selection.name.value, page, depth)
        return total

    def _fragment(self, name: str, page: int | None, depth: int) -> int:
        key = (name, page)
        if key not in self._fragment_costs:
            fragment = self.fragments.get(name)
            if fragment is None or name in self._costing:
                return 0  # unknown or cyclic: validation reports it
            self._costing.add(name)
            on = self.schema.get_type(fragment.type_condition.name.value)
            self._fragment_costs[key] = self.selections(fragment.selection_set, on, page, depth + 1)
            self._costing.discard(name)
        return self._fragment_costs[key]

    def _field(
        self, node: FieldNode, parent: GraphQLNamedType | None, page: int | None, depth: int
    ) -> int:
        if node.name.value.startswith("__"):
            return 0
        definition = _field_definition(parent, node.name.value)
        if definition is None:
            return 1 + self.selections(node.selection_set, None, None, depth + 1)
        first = self._first(node)
        paged = "first" in definition.args
        page_of_field = first if first is not None else self.page_size
        items, inner_page = 1, None
        if _is_list(definition.type):
            items = page_of_field if paged else page if page is not None else UNPAGED_LIST_ITEMS
        elif paged:
            inner_page = page_of_field  # a connection: its edges have this many items
        named = get_named_type(definition.type)
        return 1 + items * self.selections(node.selection_set, named, inner_page, depth + 1)

    def _first(self, node: FieldNode) -> int | None:
        """The ``first`` argument as the server will use it, or None when not given."""
        for argument in node.arguments or ():
            if argument.name.value != "first":
                continue
            value: object = None
            if isinstance(argument.value, IntValueNode):
                value = int(argument.value.value)
            elif isinstance(argument.value, VariableNode):
                value = self.variables.get(argument.value.name.value)
            if isinstance(value, int) and not isinstance(value, bool):
                return max(0, min(value, self.page_size))
        return None


def _field_definition(parent: GraphQLNamedType | None, name: str) -> GraphQLField | None:
    if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
        field: GraphQLField | None = parent.fields.get(name)
        return field
    return None


def _is_list(output_type: GraphQLOutputType) -> bool:
    inner = output_type.of_type if isinstance(output_type, GraphQLNonNull) else output_type
    return isinstance(inner, GraphQLList)


def _variable_values(
    operation: OperationDefinitionNode, given: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The operation's variables: the given values over the declared defaults."""
    values: dict[str, Any] = {}
    for definition in operation.variable_definitions or ():
        if isinstance(definition.default_value, IntValueNode):
            values[definition.variable.name.value] = int(definition.default_value.value)
    values.update(given or {})
    return values


def operation_cost(
    context: ValidationContext,
    operation: OperationDefinitionNode,
    page_size: int,
    variables: Mapping[str, Any] | None,
) -> int:
    """How many field resolutions ``operation`` may cause (see the module's rules)."""
    fragments = {
        definition.name.value: definition
        for definition in context.document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    costing = _Costing(
        schema=context.schema,
        fragments=fragments,
        page_size=page_size,
        variables=_variable_values(operation, variables),
    )
    root = context.schema.get_root_type(operation.operation)
    return costing.selections(operation.selection_set, root, None, 0)


def cost_rule(
    max_cost: int, page_size: int, variables: Mapping[str, Any] | None
) -> type[ValidationRule]:
    """A validation rule refusing operations that cost more than ``max_cost``."""

    class OperationCostRule(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_args: object) -> None:
            cost = operation_cost(self.context, node, page_size, variables)
            if cost > max_cost:
                self.report_error(
                    GraphQLError(
                        f"This operation may resolve {cost} fields, over the limit of "
                        f"{max_cost} (SEGPORT_GRAPHQL_MAX_COST): each field counts once per "
                        "item of the lists around it; ask for smaller pages (first) or "
                        "fewer nested lists.",
                        node,
                        extensions={"code": OPERATION_TOO_COSTLY},
                    )
                )

    return OperationCostRule
