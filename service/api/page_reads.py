"""What the nodes of a page show, read once for the whole page before its fields resolve.

A page of fifty exports shows each one's segments (with their member counts),
last run and connection. Read through per-field DataLoaders, each of those
fields was an ``async`` resolver: about 320 coroutines per page, which
graphql-core awaits in tasks it gathers, each completion another turn of the
event loop. That was most of what the page cost beyond graphql-core's own
per-field work (docs/performance.md, issue 14). Here the resolver that reads
the page's records (``exports``, ``exportRuns``, ``node``) also reads, with
one store call per kind of record and only for the fields the selection asks
for, everything those fields show, and the nodes carry it: their fields then
answer synchronously and graphql-core completes the page in one pass.

Nothing here is a cache: the reads belong to the operation that makes them
(the same reads the loaders made, in the same operation), and are dropped
with its nodes. A field whose node carries nothing (a node made by a mutation,
a subscription event, a field the planner did not expect) reads for itself as
before, through the request's DataLoaders.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from strawberry import Info
from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection

from service import domain


@dataclass(slots=True)
class PageReads:
    """What one page's nodes read, for all of them at once; None: not read (the field reads
    for itself)."""

    segments: dict[str, domain.Segment] | None = None
    """Segments by id (a missing id: the segment does not exist)."""
    member_counts: dict[str, int] | None = None
    """Member counts by segment id (read with ``segments``)."""
    last_runs: dict[str, domain.ExportRun] | None = None
    """Each export's newest run, by export id (a missing id: no run yet)."""
    connections: dict[str, domain.Connection | None] | None = None
    """Connections by id, as stored (None: it does not exist)."""
    refresh_schedule: domain.RefreshSchedule | None = None
    exports: dict[str, domain.Export] | None = None
    """Exports by id, for a page of runs (a missing id: the export was removed)."""
    nested: PageReads | None = None
    """What the nodes one level down read (a page of runs: their exports' reads)."""


class Selected:
    """The fields a selection asks for, by GraphQL name, fragments expanded.

    Directives are not evaluated: a field skipped by ``@skip`` or ``@include``
    still counts as asked for, which costs a read, never a different answer.
    """

    __slots__ = ("_fields",)

    def __init__(self, fields: Sequence[SelectedField]) -> None:
        self._fields = fields

    @classmethod
    def of(cls, selections: Iterable[Selection]) -> Selected:
        return cls(list(_fields(selections)))

    @classmethod
    def inside(cls, info: Info[Any, Any]) -> Selected:
        """The fields asked for inside the field being resolved."""
        return cls.of(info.selected_fields).under(info.field_name)

    def names(self) -> set[str]:
        return {field.name for field in self._fields}

    def under(self, name: str) -> Selected:
        """The fields asked for inside every occurrence of the field ``name``."""
        return Selected(
            [
                inner
                for field in self._fields
                if field.name == name
                for inner in _fields(field.selections)
            ]
        )


def _fields(selections: Iterable[Selection]) -> Iterator[SelectedField]:
    for selection in selections:
        if isinstance(selection, SelectedField):
            yield selection
        elif isinstance(selection, FragmentSpread | InlineFragment):
            yield from _fields(selection.selections)


def unique(values: Iterable[str]) -> list[str]:
    """Each value once, in the order first seen."""
    return list(dict.fromkeys(values))
