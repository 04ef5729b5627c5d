"""Cursor pagination rules shared by both store adapters (see :mod:`service.store.base`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from service.store.base import Page

T = TypeVar("T")


def check_first(first: int) -> None:
    """Refuse a page size that cannot be meant (the API caps the upper bound itself)."""
    if first < 0:
        raise ValueError(f"first must be zero or more, got {first}")


def page_from_rows(rows: Sequence[T], first: int, total_count: int, after: str | None) -> Page[T]:
    """A page from ``first + 1`` fetched rows: the extra row only says a next page exists."""
    return Page(
        items=list(rows[:first]),
        has_next_page=len(rows) > first,
        total_count=total_count,
        has_previous_page=after is not None,
    )


def unique_in_order(values: Sequence[str]) -> list[str]:
    """``values`` without repeats, first occurrence kept (segment ids chosen twice count once)."""
    return list(dict.fromkeys(values))
