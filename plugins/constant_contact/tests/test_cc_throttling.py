"""429s classified by documented text, any error_key and Retry-After; unexplained ones are a
short throttle that escalates to a quota pause only by the streak rule."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from cc_support import fake_context, instant_limiter
from segport_constant_contact import ConstantContact
from segport_constant_contact.errors import DailyQuotaSpent
from segport_constant_contact.fake import RunningFake
from segport_constant_contact.throttling import (
    STREAK_MIN_ANSWERS,
    STREAK_MIN_SPAN_SECONDS,
    TooMany,
    UnexplainedStreak,
    classify_429,
    quota_pause_end,
)

from service.plugins.testing import InstantSleep, RecordingReporter


@pytest.mark.parametrize(
    ("words", "key", "retry_after", "kind"),
    [
        ("You exceeded the request rate limit", None, None, TooMany.THROTTLED),
        ("You exceeded 1,000 queued activities for this user account", "too_many_requests",
         None, TooMany.QUEUED_ACTIVITIES),
        ("Limit Exceeded", "quota_exceeded", None, TooMany.QUOTA),
        ("Too Many Requests", "throttled", None, TooMany.THROTTLED),
        ("Daily request quota reached", None, None, TooMany.QUOTA),
        ("HTTP 429", None, 2.0, TooMany.THROTTLED),
        ("HTTP 429", None, 7200.0, TooMany.QUOTA),
        ("Something else", "contacts.api.unknown", None, TooMany.UNEXPLAINED),
        ("HTTP 429", None, None, TooMany.UNEXPLAINED),
    ],
)  # fmt: skip
def test_429s_are_classified_by_text_key_and_retry_after(
    words: str, key: str | None, retry_after: float | None, kind: TooMany
) -> None:
    assert classify_429(words, key, retry_after).kind is kind


def test_the_streak_rule_needs_many_unexplained_429s_spread_over_minutes() -> None:
    now = [0.0]
    streak = UnexplainedStreak(clock=lambda: now[0])
    for _ in range(STREAK_MIN_ANSWERS * 3):  # many, but within seconds: a throttle
        now[0] += 1.0
        assert not streak.unexplained()
    streak.answered()
    verdicts = []
    for _ in range(STREAK_MIN_ANSWERS):
        verdicts.append(streak.unexplained())
        now[0] += STREAK_MIN_SPAN_SECONDS / (STREAK_MIN_ANSWERS - 1)
    assert verdicts == [False] * (STREAK_MIN_ANSWERS - 1) + [True]
    assert not streak.unexplained()  # a pause needs a new streak


def test_a_quota_pause_ends_at_utc_midnight_or_after_retry_after() -> None:
    now = dt.datetime(2030, 5, 1, 13, 0, tzinfo=dt.UTC)
    assert quota_pause_end(None, now) == dt.datetime(2030, 5, 2, tzinfo=dt.UTC)
    assert quota_pause_end(60.0, now) == now + dt.timedelta(minutes=1)


async def test_an_unexplained_429_is_retried_as_a_short_throttle(
    destination: ConstantContact, fake: RunningFake, http: httpx.AsyncClient
) -> None:
    fake.state.configure(requests_per_second=10_000, requests_per_day=1, quota_body="bare")
    limiter = instant_limiter(destination)
    sleeps = InstantSleep()
    ctx = fake_context(fake, destination, http, limiter=limiter, sleep=sleeps,
                       reporter=RecordingReporter())  # fmt: skip
    await destination.verify_connection(ctx)
    with pytest.raises(Exception, match="gave up after 8 tries"):
        await destination.verify_connection(ctx)
    assert limiter.pauses == []  # never a pause for a few quick unexplained 429s
    assert max(sleeps.seconds) <= destination.settings.backoff_max_seconds


async def test_outside_a_run_a_spent_quota_is_an_answer_not_a_wait(
    destination: ConstantContact, fake: RunningFake, http: httpx.AsyncClient
) -> None:
    fake.state.configure(requests_per_second=10_000, requests_per_day=0)
    limiter = instant_limiter(destination)
    ctx = fake_context(fake, destination, http, limiter=limiter)
    with pytest.raises(DailyQuotaSpent) as caught:
        await destination.list_choices(ctx, "listId")
    assert caught.value.until.hour == 0
    assert "Constant Contact asks to wait" in str(caught.value)
    assert "try again later" in str(caught.value)
    [(until, _)] = limiter.pauses
    assert until == caught.value.until
