"""The Mailchimp destination against the fake over real HTTP, in the context the service
would give it (the public testing kit): connecting with a key, audiences, merge fields as
mapping targets, uploads counted per member, retries, the in-flight cap, archiving."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from email_validator import validate_email
from mc_support import EXPORT, context, destination, fake, http, members_of, settings  # noqa: F401
from segport_mailchimp import Mailchimp, MailchimpSettings
from segport_mailchimp.fake import CUSTOMERS_LIST_ID, DEMO_API_KEY, NEWSLETTER_LIST_ID, RunningFake
from segport_mailchimp.fields import _common_address

from service.plugins import (
    AuthorizationLost,
    InvalidCredentials,
    ListMember,
    TransientDestinationError,
)
from service.plugins.testing import (
    InMemoryCredentials,
    InMemoryRateLimiter,
    batch_of,
    pack_batches,
)


async def test_a_valid_key_connects_to_the_account_of_its_data_center(
    fake: RunningFake, destination: Mailchimp, http: httpx.AsyncClient
) -> None:
    other = fake.state.add_account(dc="us19", account_name="Elsewhere Ltd")
    assert await destination.verify_connection(context(destination, http)) == "Fake Mailchimp Co."
    ctx = context(destination, http, api_key=other.api_key)
    assert await destination.verify_connection(ctx) == "Elsewhere Ltd"
    assert any(r.path == "/us19/3.0/ping" for r in fake.state.requests)


async def test_a_refused_key_raises_invalid_credentials_in_mailchimps_words(
    fake: RunningFake, destination: Mailchimp, http: httpx.AsyncClient
) -> None:
    ctx = context(destination, http, api_key="f" * 32 + "-us6")
    with pytest.raises(InvalidCredentials) as refused:
        await destination.verify_connection(ctx)
    assert "API Key Invalid" in str(refused.value)
    assert "f" * 32 not in str(refused.value)


def test_a_malformed_key_is_refused_locally_without_echoing_it(destination: Mailchimp) -> None:
    errors = destination.validate_connection_settings({"apiKey": "secret-but-wrong"})
    assert [(e.field, e.code) for e in errors] == [("apiKey", "INVALID")]
    assert "secret-but-wrong" not in errors[0].message
    assert destination.validate_connection_settings({"apiKey": DEMO_API_KEY}) == []


def test_export_settings_need_an_audience_and_an_explicit_status(destination: Mailchimp) -> None:
    missing = destination.validate_export_settings({"listId": NEWSLETTER_LIST_ID})
    assert [(e.field, e.code) for e in missing] == [("statusIfNew", "REQUIRED")]
    wrong = destination.validate_export_settings({**EXPORT, "statusIfNew": "cleaned"})
    assert "'cleaned' is not a status for new members" in wrong[0].message
    assert destination.validate_export_settings({**EXPORT, "tags": "vip, spring"}) == []


async def test_audiences_are_offered_and_an_unknown_one_is_refused_when_saved(
    fake: RunningFake, destination: Mailchimp, http: httpx.AsyncClient
) -> None:
    for n in range(1200):  # more than one page of 1,000
        fake.state.add_audience(f"Audience {n}")
    ctx = context(destination, http)
    choices = await destination.list_choices(ctx, "listId")
    assert len(choices) == 1202
    assert choices[0].name == "Newsletter"
    errors = await destination.check_export_settings(ctx, {**EXPORT, "listId": "nope123456"})
    assert [(e.field, e.code) for e in errors] == [("listId", "NOT_FOUND")]
    assert await destination.check_export_settings(ctx, EXPORT) == []


async def test_mapping_targets_are_the_audiences_merge_fields_checked_when_saved(
    fake: RunningFake, destination: Mailchimp, http: httpx.AsyncClient
) -> None:
    ctx = context(destination, http, export_settings={**EXPORT, "listId": CUSTOMERS_LIST_ID})
    targets = {t.name: t for t in await destination.account_mapping_targets(ctx)}
    assert list(targets)[:2] == ["email_address", "FNAME"]
    assert targets["CITY"].required is True
    assert targets["POINTS"].kind == "number"
    assert targets["JOINED"].kind == "date"
    errors = await destination.check_mapping(ctx, ["email_address", "FNAME", "NOPE"])
    assert {(e.field, e.code) for e in errors} == {
        ("NOPE", "UNKNOWN_MERGE_FIELD"),
        ("CITY", "REQUIRED_TARGET"),
    }
    assert destination.validate_mapping(["FNAME"])[0].code == "REQUIRED_TARGET"
    assert destination.validate_mapping(["email_address", "lower"])[0].code == "UNKNOWN_TARGET"


async def test_values_are_normalized_by_type_and_invalid_optional_ones_dropped_with_warnings(
    fake: RunningFake, destination: Mailchimp, http: httpx.AsyncClient
) -> None:
    settings = {**EXPORT, "listId": CUSTOMERS_LIST_ID, "tags": "vip, spring"}
    ctx = context(destination, http, export_settings=settings)
    values: list[dict[str, Any]] = [
        {"email_address": "Ann@Shop.example", "CITY": "Lyon", "POINTS": "1,250",
         "JOINED": "2024-03-05", "BIRTHDAY": "1990-07-04",
         "ADDRESS": {"addr1": "1 Rue", "city": "Lyon", "state": "ARA", "zip": "69001",
                     "country": "FR"}},
        {"email_address": "bob@shop.example", "CITY": "Nice", "POINTS": "lots",
         "BIRTHDAY": "13/45", "ADDRESS": {"addr1": "2 Rue"}},
    ]  # fmt: skip
    session = destination.open_session(ctx)
    [batch] = pack_batches(destination, values, settings)
    outcome = await session.upload(batch)
    assert (outcome.accepted, outcome.rejected, outcome.cannot_add_to_list) == (2, [], [])
    members = members_of(fake, CUSTOMERS_LIST_ID)
    ann = members["ann@shop.example"]
    assert ann.merge_fields == {
        "CITY": "Lyon",
        "POINTS": 1250,
        "JOINED": "05/03/2024",
        "BIRTHDAY": "07/04",
        "ADDRESS": {"addr1": "1 Rue", "city": "Lyon", "state": "ARA", "zip": "69001",
                    "country": "FR"},
    }  # fmt: skip
    assert ann.tags == ["vip", "spring"]
    assert members["bob@shop.example"].merge_fields == {"CITY": "Nice"}
    assert sorted((w.profile_id, w.field, w.code) for w in outcome.field_warnings) == [
        ("p1", "ADDRESS", "INVALID_ADDRESS"),
        ("p1", "BIRTHDAY", "INVALID_BIRTHDAY"),
        ("p1", "POINTS", "INVALID_NUMBER"),
    ]
    assert not any("lots" in w.reason or "13/45" in w.reason for w in outcome.field_warnings)


async def test_per_member_errors_and_compliance_states_are_counted_apart_and_add_up(
    fake: RunningFake, destination: Mailchimp, http: httpx.AsyncClient
) -> None:
    fake.state.set_member(NEWSLETTER_LIST_ID, "left@shop.example", "unsubscribed")
    fake.state.set_member(NEWSLETTER_LIST_ID, "bounced@shop.example", "cleaned")
    fake.state.forget(NEWSLETTER_LIST_ID, "erased@shop.example")
    emails = [f"m{n}@shop.example" for n in range(7)] + [
        "left@shop.example",
        "bounced@shop.example",
        "erased@shop.example",
        "robot@throwaway.example",
    ]
    ctx = context(destination, http)
    [batch] = pack_batches(destination, [{"email_address": e} for e in emails], EXPORT)
    outcome = await destination.open_session(ctx).upload(batch)
    assert outcome.accepted == 7
    assert sorted(r.profile_id or "" for r in outcome.cannot_add_to_list) == ["p7", "p8", "p9"]
    [fake_address] = outcome.rejected
    assert fake_address.profile_id == "p10"
    assert "looks fake or invalid" in fake_address.rejection.message
    total = outcome.accepted + len(outcome.rejected) + len(outcome.cannot_add_to_list)
    assert total == len(batch.records)
    assert members_of(fake)["m0@shop.example"].status == "subscribed"


async def test_a_batch_mailchimp_refuses_whole_is_a_batch_error_in_its_words(
    fake: RunningFake, destination: Mailchimp, http: httpx.AsyncClient
) -> None:
    fake.state.configure(max_batch_members=2)
    records = [{"email_address": f"x{n}@shop.example", "merge_fields": {}} for n in range(3)]
    outcome = await destination.open_session(context(destination, http)).upload(
        batch_of(destination, records, EXPORT)
    )
    assert outcome.batch_error is not None
    assert outcome.batch_error.startswith("Mailchimp: Invalid Resource: A batch may hold at most 2")


async def test_429_and_5xx_are_retried_with_backoff(
    fake: RunningFake, destination: Mailchimp, http: httpx.AsyncClient
) -> None:
    fake.state.configure(server_errors_next=3)
    ctx = context(destination, http)
    [batch] = pack_batches(destination, [{"email_address": "r@shop.example"}], EXPORT)
    session = destination.open_session(ctx)
    outcome = await session.upload(batch)
    assert outcome.accepted == 1
    statuses = [r.status for r in fake.state.requests]
    assert statuses.count(500) == 3
    fake.state.configure(throttle_share=1.0)
    with pytest.raises(TransientDestinationError, match="Too Many Requests"):
        await session.upload(batch)


async def test_a_revoked_key_loses_the_connection_with_mailchimps_words(
    fake: RunningFake, destination: Mailchimp, http: httpx.AsyncClient
) -> None:
    credentials = InMemoryCredentials(secrets={"apiKey": DEMO_API_KEY})
    ctx = context(destination, http)
    ctx.credentials = credentials
    fake.state.revoke()
    [batch] = pack_batches(destination, [{"email_address": "r@shop.example"}], EXPORT)
    with pytest.raises(AuthorizationLost, match="API Key Invalid"):
        await destination.open_session(ctx).upload(batch)
    assert credentials.rejections == [
        "Mailchimp: API Key Invalid: Your API key may be invalid, or you've attempted to "
        "access the wrong datacenter."
    ]


async def test_never_more_than_10_requests_in_flight_per_key_however_many_uploads(
    fake: RunningFake, destination: Mailchimp, http: httpx.AsyncClient
) -> None:
    fake.state.configure(latency_seconds=0.05)
    limiter = InMemoryRateLimiter(destination.limits)
    ctx = context(destination, http, limiter=limiter)
    session = destination.open_session(ctx)
    records = [{"email_address": f"c{n}@shop.example", "merge_fields": {}} for n in range(500)]
    batches = [batch_of(destination, records[n : n + 20], EXPORT) for n in range(0, 500, 20)]
    outcomes = await asyncio.gather(*(session.upload(b) for b in batches))  # 25 at once
    assert sum(o.accepted for o in outcomes) == 500
    assert fake.state.peak_in_flight[DEMO_API_KEY] == 10
    assert fake.state.over_cap_refusals == 0
    assert max(limiter.peak_in_flight.values()) == 10


async def test_a_mirror_removal_archives_the_members_and_counts_strangers_as_removed(
    fake: RunningFake, destination: Mailchimp, http: httpx.AsyncClient
) -> None:
    for n in range(30):
        fake.state.set_member(NEWSLETTER_LIST_ID, f"Keep{n}@Shop.example", "subscribed")
    leaving = [ListMember(f"keep{n}@shop.example") for n in range(0, 30, 3)]
    session = destination.open_session(context(destination, http))
    outcomes = await session.remove_list_members([*leaving, ListMember("never@shop.example")])
    assert all(o.removed for o in outcomes)
    assert len(outcomes) == 11
    left = {m.email_address.lower() for m in fake.state.audience(NEWSLETTER_LIST_ID).active()}
    assert left == {f"keep{n}@shop.example" for n in range(30) if n % 3}
    audience = fake.state.audience(NEWSLETTER_LIST_ID)
    archived = [m for m in audience.members.values() if m.status == "archived"]
    assert len(archived) == 10
    assert not any(m.forgotten for m in audience.members.values())  # never deleted for good
    assert not any("delete-permanent" in r.path for r in fake.state.requests)


@pytest.mark.parametrize(
    "address",
    ["a@shop.example", "First.Last+tag@mail.shop.example", "o'neil@shop.example", "x_y@a-b.co"],
)
def test_everyday_addresses_skip_the_full_validator_only_when_it_would_accept_them(
    address: str,
) -> None:
    assert _common_address(address)
    validate_email(address, check_deliverability=False)


@pytest.mark.parametrize(
    "address", [".a@shop.example", "a..b@shop.example", "a@shop.test", "a@xn--bcher--kva.example"]
)
def test_unusual_addresses_go_to_the_full_validator(address: str) -> None:
    assert not _common_address(address)


async def test_archiving_through_a_batch_operation_is_followed_to_its_end(
    fake: RunningFake, settings: MailchimpSettings, http: httpx.AsyncClient
) -> None:
    destination = Mailchimp(settings.model_copy(update={"archive_with_batch_operations": True}))
    for n in range(5):
        fake.state.set_member(NEWSLETTER_LIST_ID, f"leaver{n}@shop.example", "subscribed")
    fake.state.configure(batch_polls_to_finish=3)
    session = destination.open_session(context(destination, http))
    keys = [f"leaver{n}@shop.example" for n in range(5)] + ["stranger@shop.example"]
    outcomes = await session.remove_list_members([ListMember(k) for k in keys])
    assert {o.key: o.removed for o in outcomes} == dict.fromkeys(keys, True)
    assert fake.state.audience(NEWSLETTER_LIST_ID).active() == []
    polls = [r for r in fake.state.requests if r.method == "GET" and "/batches/" in r.path]
    assert len(polls) == 3
    assert not any(r.method == "DELETE" for r in fake.state.requests)
