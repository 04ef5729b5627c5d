"""Cursor pagination rules shared by both store adapters (see :mod:`service.store.base`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from service.store.base import Page

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PageRequest:
    """One page asked for: ``first`` items after the id ``after``, in id order.

    ``newest_first`` pages by id descending (runs), so "after" means a smaller id.
    """

    first: int
    after: str | None = None
    newest_first: bool = False

    def __post_init__(self) -> None:
        # Refuse a page size that cannot be meant (the API caps the upper bound itself).
        if self.first < 0:
            raise ValueError(f"first must be zero or more, got {self.first}")

    @property
    def limit(self) -> int:
        """How many rows to fetch: one more than the page, to know whether a next page exists."""
        return self.first + 1

    def page(self, rows: Sequence[T], total_count: int) -> Page[T]:
        """The page from the ``limit`` rows fetched: the extra row only says a next one exists."""
        return Page(
            items=list(rows[: self.first]),
            has_next_page=len(rows) > self.first,
            total_count=total_count,
            has_previous_page=self.after is not None,
        )


def unique_in_order(values: Sequence[str]) -> list[str]:
    """``values`` without repeats, first occurrence kept (segment ids chosen twice count once)."""
    return list(dict.fromkeys(values))


def in_given_order(ids: Sequence[str], found: Mapping[str, T]) -> list[T]:
    """The found items of ``ids`` (already without repeats), in the order the ids were given."""
    return [found[i] for i in ids if i in found]
