"""What a 429 from Constant Contact means, and when unexplained 429s mean the day's quota.

Constant Contact documents 429 bodies only by their text (docs/constant-contact.md,
"Rate limits"): "You exceeded the request rate limit" (the per-second limit: back off
briefly) and, on activity POSTs, "You exceeded 1,000 queued activities" (wait for
activities to finish). Nothing published says how the daily quota answers. So a 429 is
classified by, in order: its documented text, its ``error_key`` (whatever it is), its
``Retry-After``; a 429 that none of these explains is a short throttle, and only a
streak of them (the rule in :class:`UnexplainedStreak`) is read as the daily quota.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

RATE_LIMIT_TEXT = "exceeded the request rate limit"
QUEUED_ACTIVITIES_TEXT = "queued activities"
QUOTA_WORDS = ("quota", "daily", "per day", "limit exceeded")
THROTTLE_WORDS = ("throttl", "rate limit", "too many requests", "too_many_requests")
LONG_RETRY_AFTER_SECONDS = 3600.0
"""A ``Retry-After`` longer than an hour is a pause of the whole application, not a throttle."""

STREAK_MIN_ANSWERS = 6
STREAK_MIN_SPAN_SECONDS = 180.0
"""Unexplained 429s are read as the daily quota only when at least 6 came in a row (no
other answer between) spread over at least 3 minutes: a throttle that backoff cannot
clear for that long is not a per-second limit."""


class TooMany(Enum):
    THROTTLED = "throttled"
    """The per-second limit: back off briefly and retry."""
    QUEUED_ACTIVITIES = "queued_activities"
    """1,000 activities queued in the account: wait minutes, then retry."""
    QUOTA = "quota"
    """The application's daily quota: nothing before the pause ends."""
    UNEXPLAINED = "unexplained"
    """No documented text, no telling key, no Retry-After: a short throttle at first."""


@dataclass(frozen=True, slots=True)
class Classified:
    kind: TooMany
    retry_after: float | None = None
    """Seconds the answer asked to wait (``Retry-After``), when it did."""


def classify_429(words: str, key: str | None, retry_after: float | None) -> Classified:
    """Classify one 429 by its text (``error_message``), ``error_key`` and ``Retry-After``."""
    text = words.lower()
    if QUEUED_ACTIVITIES_TEXT in text:
        return Classified(TooMany.QUEUED_ACTIVITIES, retry_after)
    if RATE_LIMIT_TEXT in text:
        return Classified(TooMany.THROTTLED, retry_after)
    lowered_key = (key or "").lower()
    if any(word in lowered_key or word in text for word in QUOTA_WORDS):
        return Classified(TooMany.QUOTA, retry_after)
    if any(word in lowered_key or word in text for word in THROTTLE_WORDS):
        return Classified(TooMany.THROTTLED, retry_after)
    if retry_after is not None:
        kind = TooMany.QUOTA if retry_after > LONG_RETRY_AFTER_SECONDS else TooMany.THROTTLED
        return Classified(kind, retry_after)
    return Classified(TooMany.UNEXPLAINED)


class UnexplainedStreak:
    """Unexplained 429s in a row, across every request of one destination (the limits are
    the application's, so the streak is too); any other answer ends the streak."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._first: float | None = None
        self._count = 0

    def answered(self) -> None:
        """A request got an answer other than an unexplained 429."""
        self._first, self._count = None, 0

    def unexplained(self) -> bool:
        """Count one unexplained 429; True when the streak now reads as the daily quota
        (the streak then starts over, so the next pause needs a new streak)."""
        now = self._clock()
        if self._first is None:
            self._first = now
        self._count += 1
        if self._count >= STREAK_MIN_ANSWERS and now - self._first >= STREAK_MIN_SPAN_SECONDS:
            self.answered()
            return True
        return False


def quota_pause_end(retry_after: float | None, now: dt.datetime | None = None) -> dt.datetime:
    """When a daily-quota pause ends: after ``Retry-After`` when given, else at the next
    00:00 UTC, when Constant Contact's day (and quota) starts over."""
    now = now or dt.datetime.now(dt.UTC)
    if retry_after is not None:
        return now + dt.timedelta(seconds=retry_after)
    return dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
