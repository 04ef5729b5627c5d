"""Relay connection plumbing: page arguments, cursors, ``PageInfo``, edges and connections.

One generic :class:`ListConnection` serves every list: ``ListConnection[Segment]``
is the schema's ``SegmentConnection``, with ``SegmentEdge`` edges.

Pages are fetched in the database through the store's ``first``/``after``;
nothing here slices a full list. ``first`` defaults to, and is clamped at,
``settings.max_page_size`` (a clamp rather than an error, so clients asking for
"everything" get the largest page and follow ``pageInfo.hasNextPage``); a
negative ``first`` or a cursor this service did not make is a top-level
``BAD_USER_INPUT`` error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import strawberry

from service.api.errors import bad_user_input
from service.api.ids import InvalidGlobalId, from_cursor, to_cursor
from service.settings import Settings
from service.store.base import Page

N = TypeVar("N")
R = TypeVar("R", bound="_HasId")


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


@dataclass(frozen=True, slots=True)
class PageArgs:
    first: int
    after: str | None


def page_args(settings: Settings, first: int | None, after: str | None) -> PageArgs:
    """Checked ``first`` (clamped at ``max_page_size``) and the raw id ``after`` points past."""
    if first is None:
        first = settings.max_page_size
    if first < 0:
        raise bad_user_input(f"first must be zero or more, not {first}")
    after_id: str | None = None
    if after:
        try:
            after_id = from_cursor(after)
        except InvalidGlobalId as exc:
            raise bad_user_input(str(exc)) from exc
    return PageArgs(first=min(first, settings.max_page_size), after=after_id)


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[N]):
    cursor: str
    node: N


def edges_of(records: Sequence[R], to_node: Callable[[R], N]) -> list[Edge[N]]:
    return [Edge(cursor=to_cursor(record.id), node=to_node(record)) for record in records]


def page_info(records: Sequence[_HasId], has_next: bool, has_previous: bool) -> PageInfo:
    return PageInfo(
        has_next_page=has_next,
        has_previous_page=has_previous,
        start_cursor=to_cursor(records[0].id) if records else None,
        end_cursor=to_cursor(records[-1].id) if records else None,
    )


# Named "Connection" for GraphQL: strawberry names ListConnection[Segment] "SegmentConnection".
@strawberry.type(name="Connection")
class ListConnection(Generic[N]):
    """A page of nodes, Relay style, with how many there are in all."""

    edges: list[Edge[N]]
    page_info: PageInfo
    total_count: int

    @classmethod
    def of(cls, page: Page[R], to_node: Callable[[R], N]) -> ListConnection[N]:
        """The connection showing one page of the store, each record as ``to_node`` makes it."""
        return cls(
            edges=edges_of(page.items, to_node),
            page_info=page_info(page.items, page.has_next_page, page.has_previous_page),
            total_count=page.total_count,
        )
