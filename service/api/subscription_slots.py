"""Open subscriptions per user: the cap of ``SEGPORT_MAX_SUBSCRIPTIONS_PER_USER``.

One open subscription holds a run-events listener and a task for as long as
the client stays; without a cap one viewer could open thousands over many
sockets (graphql-transport-ws itself only caps each socket). The count is per
API process: several replicas each allow the cap.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class TooManySubscriptions(Exception):
    """The user holds ``limit`` subscriptions already."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"you have {limit} subscriptions open, the most one user may hold at once; "
            "complete one before starting another"
        )
        self.limit = limit


class SubscriptionSlots:
    """Open subscriptions per user (token ``sub``) in this process."""

    def __init__(self, on_change: Callable[[int], None] | None = None) -> None:
        self._open: Counter[str] = Counter()
        self._total = 0
        self._on_change = on_change
        """Told the number open in all after each change (the process's memory return)."""

    def open_for(self, sub: str) -> int:
        return self._open[sub]

    def any_open(self) -> bool:
        return bool(self._open)

    @contextmanager
    def hold(self, sub: str, limit: int) -> Iterator[None]:
        """One slot of ``sub``'s while the block runs; raises TooManySubscriptions when full."""
        if self._open[sub] >= limit:
            raise TooManySubscriptions(limit)
        self._open[sub] += 1
        self._changed(+1)
        try:
            yield
        finally:
            self._open[sub] -= 1
            if self._open[sub] <= 0:
                del self._open[sub]
            self._changed(-1)

    def _changed(self, by: int) -> None:
        self._total += by
        if self._on_change is not None:
            self._on_change(self._total)
