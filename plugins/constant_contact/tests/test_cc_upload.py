"""The uploader against the fake over real HTTP: every contact lands, within every limit;
throttling, server trouble, expired tokens and quotas are absorbed; what Constant Contact
refuses is reported in its own words and counted."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from cc_support import GENERAL_LIST, fake_context, fast_context
from segport_constant_contact import ConstantContact
from segport_constant_contact.fake import RunningFake
from segport_constant_contact.transport import retry_after_seconds

from service.plugins import (
    AuthorizationLost,
    DestinationError,
    TransientDestinationError,
    UploadBatch,
)
from service.plugins.testing import (
    InMemoryRateLimiter,
    InstantSleep,
    RecordingReporter,
    VirtualClock,
    batch_of,
    pack_batches,
)


def batches_of(
    destination: ConstantContact, contacts: list[dict[str, object]], list_id: str = GENERAL_LIST
) -> list[UploadBatch]:
    """Build, encode and pack contacts the way a run does, with the service's batcher."""
    return pack_batches(destination, contacts, {"listId": list_id})


def raw_batch(destination: ConstantContact, emails: list[str]) -> UploadBatch:
    """A batch holding contacts exactly as given (to send what build_record would refuse)."""
    return batch_of(destination, [{"email": e} for e in emails], {"listId": GENERAL_LIST})


async def test_100000_contacts_land_in_the_list_within_every_limit_and_rate(
    destination: ConstantContact, fake: RunningFake, http: httpx.AsyncClient
) -> None:
    contacts: list[dict[str, object]] = [
        {"email": f"Person.{i:06d}@Example.com", "first_name": f"First{i}",
         "last_name": "Lastname-" + "x" * (i % 40), "city": "Springfield"}
        for i in range(100_000)
    ]  # fmt: skip
    batches = batches_of(destination, contacts)
    # The declared limits in real time, measured at the fake on arrival.
    limiter = InMemoryRateLimiter(destination.limits)
    ctx = fake_context(fake, destination, http, limiter=limiter)
    session = destination.open_session(ctx)
    confirmed = []
    for batch in batches:
        outcome = await session.upload(batch)
        assert outcome.batch_error is None
        assert outcome.receipt
        confirmed.append(await session.confirm(outcome.receipt))
    await session.aclose()

    assert sum(c.accepted for c in confirmed) == 100_000
    assert sum(c.rejected + c.cannot_add_to_list for c in confirmed) == 0
    members = fake.state.list_members(GENERAL_LIST)
    assert len(members) == 100_000
    assert "person.099999@example.com" in members
    assert fake.state.truncated_imports == 0
    assert fake.state.largest_body() < 4_000_000
    assert fake.state.most_records() <= 40_000
    assert len(batches) >= 3  # cut by bytes as well as by count
    assert fake.state.max_requests_in_window(1.0) <= 4
    assert {r.status for r in fake.state.request_log} <= {200, 201}


async def test_throttling_and_503_storms_are_absorbed(
    destination: ConstantContact, fake: RunningFake, http: httpx.AsyncClient
) -> None:
    fake.state.configure(throttle_share=0.3, server_error_share=0.3, requests_per_second=10_000)
    sleeps = InstantSleep()
    ctx = fast_context(fake, destination, http, sleep=sleeps)
    session = destination.open_session(ctx)
    total = 0
    for start in range(0, 300, 50):
        batch = raw_batch(destination, [f"c{i}@example.com" for i in range(start, start + 50)])
        outcome = await session.upload(batch)
        assert outcome.receipt
        total += (await session.confirm(outcome.receipt)).accepted
    await session.aclose()
    assert total == 300
    assert len(fake.state.list_members(GENERAL_LIST)) == 300
    statuses = [r.status for r in fake.state.request_log]
    assert 429 in statuses
    assert 503 in statuses
    backoffs = [s for s in sleeps.seconds if s <= 0.05]
    assert backoffs  # backoff waited (bounded by the configured ceiling)


async def test_retry_after_is_honoured(
    destination: ConstantContact, fake: RunningFake, http: httpx.AsyncClient
) -> None:
    answer = httpx.Response(429, headers={"Retry-After": "7"})
    assert retry_after_seconds(answer) == 7.0
    assert retry_after_seconds(httpx.Response(429)) is None


async def test_endless_server_errors_give_up_as_transient_after_bounded_tries(
    destination: ConstantContact, fake: RunningFake, http: httpx.AsyncClient
) -> None:
    fake.state.configure(server_error_share=1.0, requests_per_second=10_000)
    ctx = fast_context(fake, destination, http)
    session = destination.open_session(ctx)
    with pytest.raises(TransientDestinationError, match="503 Service Unavailable; gave up after 8"):
        await session.upload(raw_batch(destination, ["a@example.com"]))
    assert len(fake.state.request_log) == 8


async def test_a_refused_batch_is_reported_in_constant_contacts_words(
    destination: ConstantContact, fake: RunningFake, http: httpx.AsyncClient
) -> None:
    fake.state.configure(refusals_expected=True)  # a list the account lacks, on purpose
    unknown_list = "11111111-2222-4333-8444-555555555555"
    ctx = fast_context(fake, destination, http,
                       list_id=unknown_list)  # fmt: skip
    session = destination.open_session(ctx)
    outcome = await session.upload(raw_batch(destination, ["a@example.com"]))
    assert outcome.receipt is None
    assert outcome.batch_error == f"list_ids: '{unknown_list}' is not a list"


async def test_unsubscribed_and_malformed_contacts_are_counted_by_confirm(
    destination: ConstantContact, fake: RunningFake, http: httpx.AsyncClient
) -> None:
    fake.state.configure(unsubscribed={"gone@example.com"})
    ctx = fast_context(fake, destination, http)
    session = destination.open_session(ctx)
    emails = ["ana@example.com", "Gone@Example.com", "no-at-sign", "bo@example.com"]
    outcome = await session.upload(raw_batch(destination, emails))
    assert outcome.receipt
    confirmation = await session.confirm(outcome.receipt)
    assert (confirmation.accepted, confirmation.rejected, confirmation.cannot_add_to_list) == (
        2,
        1,
        1,
    )
    assert confirmation.accepted + confirmation.rejected + confirmation.cannot_add_to_list == 4
    assert confirmation.error_samples == ["Row 3: invalid email address 'no-at-sign'"]
    assert confirmation.failure is None
    assert fake.state.list_members(GENERAL_LIST) == {"ana@example.com", "bo@example.com"}
    assert not fake.state.contacts["gone@example.com"].list_ids
    await session.aclose()


async def test_an_expired_token_is_refreshed_once_and_the_upload_retried(
    destination: ConstantContact, fake: RunningFake, http: httpx.AsyncClient
) -> None:
    ctx = fast_context(fake, destination, http)
    fake.state.expire_access_tokens()
    session = destination.open_session(ctx)
    outcome = await session.upload(raw_batch(destination, ["ana@example.com"]))
    await session.aclose()
    assert outcome.receipt
    assert [r.status for r in fake.state.request_log] == [401, 201]


async def test_a_refused_refresh_loses_the_authorization(
    destination: ConstantContact, fake: RunningFake, http: httpx.AsyncClient
) -> None:
    ctx = fast_context(fake, destination, http)
    fake.state.expire_access_tokens()
    fake.state.refresh_tokens.clear()
    session = destination.open_session(ctx)
    with pytest.raises(AuthorizationLost, match="unknown, invalid, or expired refresh token"):
        await session.upload(raw_batch(destination, ["ana@example.com"]))


async def test_a_missing_scope_is_a_destination_error(
    destination: ConstantContact, fake: RunningFake, http: httpx.AsyncClient
) -> None:
    ctx = fast_context(fake, destination, http)
    narrow = fake.state.issue_tokens(scope="contact_data")
    ctx.credentials.current.access_token = narrow["access_token"]  # type: ignore[attr-defined]
    with pytest.raises(DestinationError, match="account_read scope is required"):
        await destination.verify_connection(ctx)


async def test_spent_daily_quota_pauses_until_midnight_utc_and_then_continues(
    destination: ConstantContact, fake: RunningFake, http: httpx.AsyncClient
) -> None:
    fake.state.configure(requests_per_day=1, requests_per_second=10_000)
    clock = VirtualClock()

    class NewDay(InstantSleep):
        async def __call__(self, seconds: float) -> None:
            await super().__call__(seconds)
            clock.now += seconds
            if seconds > 60:
                fake.state.configure(requests_per_day=10_000)  # the day turned

    # The pause is waited out in the shared limiter (where an admin can lift it).
    limiter = InMemoryRateLimiter(destination.limits, clock=clock, sleep=NewDay())
    reporter = RecordingReporter()
    ctx = fake_context(fake, destination, http, limiter=limiter, sleep=InstantSleep(),
                       reporter=reporter)  # fmt: skip
    session = destination.open_session(ctx)
    first = await session.upload(raw_batch(destination, ["first@example.com"]))
    second = await session.upload(raw_batch(destination, ["second@example.com"]))
    assert first.receipt
    assert second.receipt
    assert (await session.confirm(second.receipt)).accepted == 1
    await session.aclose()
    [(until, reason)] = limiter.pauses
    assert (until.hour, until.minute, until.tzinfo) == (0, 0, dt.UTC)
    assert until > dt.datetime.now(dt.UTC)
    assert reason == "Constant Contact's daily request quota is spent (Limit Exceeded)"
    assert until.isoformat() not in reason  # the service adds when it ends, once
    assert (reason, until) in reporter.waits
    assert fake.state.list_members(GENERAL_LIST) == {"first@example.com", "second@example.com"}


async def test_queued_activities_limit_is_waited_out(
    destination: ConstantContact, fake: RunningFake, http: httpx.AsyncClient
) -> None:
    fake.state.configure(queued_activities_429s=2)
    sleeps = InstantSleep()
    reporter = RecordingReporter()
    ctx = fast_context(fake, destination, http,
                       sleep=sleeps, reporter=reporter)  # fmt: skip
    session = destination.open_session(ctx)
    outcome = await session.upload(raw_batch(destination, ["ana@example.com"]))
    await session.aclose()
    assert outcome.receipt
    assert sleeps.seconds[:2] == [0.01, 0.02]  # growing waits
    assert len(reporter.waits) == 2
    assert "1,000 queued activities" in reporter.waits[0][0]


async def test_an_oversized_batch_is_refused_before_anything_is_sent(
    destination: ConstantContact, fake: RunningFake, http: httpx.AsyncClient
) -> None:
    ctx = fast_context(fake, destination, http)
    session = destination.open_session(ctx)
    huge = raw_batch(destination, [f"{i:040d}@example.com" for i in range(40_001)])
    with pytest.raises(DestinationError, match="40001 contacts exceeds the 40000"):
        await session.upload(huge)
    assert fake.state.request_log == []


async def test_a_session_without_a_list_is_refused(
    destination: ConstantContact, fake: RunningFake, http: httpx.AsyncClient
) -> None:
    ctx = fake_context(fake, destination, http)
    ctx.export_settings = {}
    with pytest.raises(DestinationError, match="listId"):
        destination.open_session(ctx)


async def test_tokens_never_appear_in_error_messages(
    destination: ConstantContact, fake: RunningFake, http: httpx.AsyncClient
) -> None:
    ctx = fast_context(fake, destination, http)
    token = ctx.credentials.current.access_token  # type: ignore[attr-defined]
    refresh = ctx.credentials.current.refresh_token  # type: ignore[attr-defined]
    fake.state.expire_access_tokens()
    fake.state.refresh_tokens.clear()
    with pytest.raises(AuthorizationLost) as caught:
        await destination.open_session(ctx).upload(raw_batch(destination, ["a@example.com"]))
    assert token not in str(caught.value)
    assert refresh not in str(caught.value)
