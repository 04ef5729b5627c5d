"""Removing list members (mirror exports) through the published calls, over real HTTP to the
fake: one contact export of the list finds the ids, removals go 500 contact ids at a time,
the contacts stay in the account, and the requests stay few."""

from __future__ import annotations

import httpx
from cc_support import GENERAL_LIST, fast_context
from segport_constant_contact import ConstantContact
from segport_constant_contact.fake import RunningFake
from segport_constant_contact.removals import member_ids

from service.plugins import ListMember, RemovalOutcome
from service.plugins.testing import batch_of

MEMBERS = 1_600
LEAVERS = 1_100
"""Three removal requests (500, 500, 100)."""


async def test_leavers_are_taken_off_the_list_with_few_requests(
    destination: ConstantContact, fake: RunningFake, http: httpx.AsyncClient
) -> None:
    fake.state.configure(polls_to_complete=2, unsubscribed={"p7@example.com"})
    ctx = fast_context(fake, destination, http)
    session = destination.open_session(ctx)
    contacts = [{"email": f"P{i}@example.com"} for i in range(MEMBERS)]
    outcome = await session.upload(batch_of(destination, contacts, {"listId": GENERAL_LIST}))
    assert outcome.receipt is not None
    await session.confirm(outcome.receipt)
    assert len(fake.state.list_members(GENERAL_LIST)) == MEMBERS - 1  # p7 is unsubscribed
    before = len(fake.state.request_log)

    leavers = [ListMember(f"p{i}@example.com") for i in range(LEAVERS)]
    strangers = [ListMember("never-sent@example.com")]
    outcomes = await session.remove_list_members([*leavers, *strangers])
    await session.aclose()

    assert outcomes == [RemovalOutcome(m.key, removed=True) for m in [*leavers, *strangers]]
    assert fake.state.list_members(GENERAL_LIST) == {
        f"p{i}@example.com" for i in range(LEAVERS, MEMBERS)
    }
    # Taken off the list, never out of the account.
    assert len(fake.state.contacts) == MEMBERS
    log = fake.state.request_log[before:]
    removals = [r for r in log if r.path == "/v3/activities/remove_list_memberships"]
    exports = [r for r in log if r.path == "/v3/activities/contact_exports"]
    files = [r for r in log if r.path.startswith("/v3/contact_exports/")]
    assert (len(removals), len(exports), len(files)) == (3, 1, 1)
    assert len(log) <= 10, [(r.method, r.path) for r in log]


async def test_a_removal_activity_that_fails_reports_each_member_with_its_reason(
    destination: ConstantContact, fake: RunningFake, http: httpx.AsyncClient
) -> None:
    ctx = fast_context(fake, destination, http)
    session = destination.open_session(ctx)
    contacts = [{"email": f"q{i}@example.com"} for i in range(3)]
    outcome = await session.upload(batch_of(destination, contacts, {"listId": GENERAL_LIST}))
    assert outcome.receipt is not None
    await session.confirm(outcome.receipt)
    # The export activity completes; the removal activity after it fails.
    fake.state.configure(ending_states=["completed", "failed"])
    outcomes = await session.remove_list_members([ListMember("q0@example.com")])
    await session.aclose()
    assert len(outcomes) == 1
    assert not outcomes[0].removed
    assert outcomes[0].reason is not None
    assert "ended failed" in outcomes[0].reason


def test_the_export_file_is_read_by_column_name_and_only_for_the_addresses_asked() -> None:
    text = b"Email Address,Contact_ID,first_name\nA@x.example,id-a,Ann\nb@x.example,id-b,Bob\n"
    assert member_ids(text, ["a@x.example", "c@x.example"]) == {"a@x.example": "id-a"}
