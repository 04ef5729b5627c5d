"""Sync modes end to end: real HTTP to the fake Constant Contact, on both stores.

A first run sends everything; after 10 profiles change, 3 join and 5 leave, a
SEND_CHANGES run sends exactly 13, a MIRROR run also takes exactly the 5 off the list;
previewExport's numbers are the run's own; a mirror run interrupted in its removal
phase resumes with exact counts and an exact list.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import pytest
from segport_constant_contact import ConstantContact
from segport_constant_contact.fake import RunningFake, run_fake
from segport_constant_contact.fake.records import FakeContact

from service.core import Services, open_services
from service.domain import (
    Export,
    ExportRun,
    ExportRunStatus,
    ExportRunTrigger,
    Profile,
    RunCounts,
    SyncMode,
)
from service.runs.lifecycle import execute_run
from service.runs.preview import preview_export
from service.runs.whole_list import CONFIRMATION_SECONDS, ConfirmationError, confirmed_cap
from service.store.base import LedgerDigest
from service.store.mongo.ledger import JOURNAL_FIELD
from tests.runs.cc_world import NEWSLETTER_LIST, ConstantContactPlugin, fast_cc_settings
from tests.runs.cc_world import seed_cc_export as seed_export
from tests.support.records import make_segment
from tests.support.settings import make_settings

PROFILES = 100


@pytest.fixture
def fake() -> Iterator[RunningFake]:
    with run_fake(seed=11, requests_per_second=50) as running:
        yield running


@pytest.fixture(params=["sqlite", "mongo"])
async def services(
    request: pytest.FixtureRequest, tmp_path: Path, fake: RunningFake
) -> AsyncIterator[Services]:
    destination = ConstantContact(fast_cc_settings(fake))
    # Several imports and several removal calls with a hundred profiles.
    destination.limits = replace(
        destination.limits,
        batch_max_records=40,
        requests_per_second=50,
        removal_batch_max_records=2,
    )
    database_url = (
        f"sqlite:///{tmp_path / 'sync.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("mongo_database_url")
    )
    settings = make_settings(database_url, run_read_batch_size=25, run_heartbeat_seconds=0.2)
    async with open_services(
        settings, extra_plugins=[ConstantContactPlugin(destination)], load_entry_points=False
    ) as opened:
        await opened.queue.aclose()  # the tests drive each run's job
        yield opened


def person(i: int, first: str = "First") -> Profile:
    return Profile(
        id=f"p{i:04d}",
        attributes={"EmailAddress": f"Person{i}@Example.com", "FirstName": f"{first}{i}"},
    )


def email(i: int) -> str:
    return f"person{i}@example.com"


async def run_now(
    services: Services, export: Export, *, full_resync: bool = False, whole_list: int | None = None
) -> ExportRun:
    run = await services.runs.request_run(
        export.id,
        ExportRunTrigger.ON_DEMAND,
        "alice",
        full_resync=full_resync,
        whole_list=whole_list,
    )
    done = await execute_run(services.run_context, run.id)
    assert done is not None
    assert done.status is ExportRunStatus.SUCCEEDED, done.message
    return done


def add_up(c: RunCounts) -> None:
    sent = c.contacts_sent + c.skipped_unchanged + c.skipped_invalid + c.skipped_duplicate
    assert c.profiles_read == sent


async def changed_world(services: Services, export: Export) -> tuple[set[int], str]:
    """10 profiles change, 3 join, 5 leave, 1 moves to the export's other segment; returns
    the profile numbers now in the export's segments, and the other segment's id."""
    other = make_segment(name="Second segment", description=None)
    await services.store.save_segment(other)
    export.segment_ids = [*export.segment_ids, other.id]
    await services.store.save_export(export)
    first = export.segment_ids[0]
    changed = [replace(person(i, "Changed"), segment_ids=[first]) for i in range(10)]
    # One changed name is too long for Constant Contact: cut, with a field warning.
    changed[9].attributes["FirstName"] = "Changed" + "x" * 60
    joined = [replace(person(i), segment_ids=[first]) for i in range(PROFILES, PROFILES + 3)]
    left = [replace(person(i), segment_ids=[]) for i in range(50, 55)]
    moved = [replace(person(60), segment_ids=[other.id])]
    await services.store.upsert_profiles([*changed, *joined, *left, *moved])
    members = (set(range(PROFILES)) - set(range(50, 55))) | set(range(PROFILES, PROFILES + 3))
    return members, other.id


async def seeded(services: Services, fake: RunningFake, mode: SyncMode) -> Export:
    export = await seed_export(services, fake, [person(i) for i in range(PROFILES)])
    export.sync_mode = mode
    export.field_mapping = export.field_mapping[:2]  # EmailAddress, FirstName
    await services.store.save_export(export)
    return export


@pytest.mark.parametrize("mode", [SyncMode.SEND_CHANGES, SyncMode.MIRROR])
async def test_a_second_run_sends_exactly_what_changed_and_a_mirror_removes_the_leavers(
    services: Services, fake: RunningFake, mode: SyncMode
) -> None:
    export = await seeded(services, fake, mode)
    first = await run_now(services, export)
    assert (first.counts.contacts_sent, first.counts.skipped_unchanged) == (PROFILES, 0)
    assert first.counts.removed_from_list == 0  # an empty ledger removes nothing
    assert len(fake.state.list_members(NEWSLETTER_LIST)) == PROFILES

    members, _ = await changed_world(services, export)
    preview = await preview_export(services.run_context, export)
    imports_before = fake.state.requests_to("POST", "/v3/activities/contacts_json_import")
    second = await run_now(services, export)

    c = second.counts
    add_up(c)
    assert (c.profiles_read, c.contacts_sent, c.skipped_unchanged) == (98, 13, 85)
    assert c.accepted_by_destination == 13
    removed = 5 if mode is SyncMode.MIRROR else 0
    assert (c.removed_from_list, c.removals_failed) == (removed, 0)
    assert (preview.to_add, preview.to_update, preview.unchanged) == (3, 10, 85)
    assert preview.to_add + preview.to_update == c.contacts_sent
    assert preview.to_remove == c.removed_from_list + c.removals_failed
    assert (preview.skipped_invalid, preview.skipped_duplicate) == (0, 0)
    assert preview.field_warnings == c.field_warnings == 1
    assert [item.profile_id for item in preview.sample[:3]] == ["p0000", "p0001", "p0002"]
    assert preview.sample[0].contact == {"email": "Person0@Example.com", "first_name": "Changed0"}
    # 13 contacts fit one import of 40.
    assert fake.state.requests_to("POST", "/v3/activities/contacts_json_import") == (
        imports_before + 1
    )
    expected = {email(i) for i in members}
    if mode is SyncMode.SEND_CHANGES:
        expected |= {email(i) for i in range(50, 55)}  # nothing is removed
    assert fake.state.list_members(NEWSLETTER_LIST) == expected
    assert fake.state.contacts[email(3)].fields["first_name"] == "Changed3"
    assert len(fake.state.contacts) == PROFILES + 3  # removed from the list, not the account

    third = await run_now(services, export)
    assert (third.counts.contacts_sent, third.counts.skipped_unchanged) == (0, 98)
    assert third.counts.removed_from_list == 0


@pytest.mark.parametrize("mode", [SyncMode.SEND_CHANGES, SyncMode.MIRROR])
async def test_the_ledger_is_read_while_constant_contact_is_asked_about_the_list(
    services: Services, fake: RunningFake, mode: SyncMode, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run's two slow starts overlap: its ledger's index is read while Constant
    Contact exports the unsubscribed contacts. The ledger read here waits for that export
    to be asked for, so a run doing one after the other would never start streaming."""
    export = await seeded(services, fake, mode)
    await run_now(services, export)
    await services.store.upsert_profiles(
        [replace(person(0, "Changed"), segment_ids=export.segment_ids)]
    )
    store = services.store
    read_digest = store.iter_ledger_digest
    asked = ("POST", "/v3/activities/contact_exports")
    before = fake.state.requests_to(*asked)  # the first run's

    async def digest_once_asked(export_id: str, **paging: int) -> AsyncIterator[LedgerDigest]:
        deadline = time.monotonic() + 10
        while fake.state.requests_to(*asked) == before:
            assert time.monotonic() < deadline, "the ledger was read before the list"
            await asyncio.sleep(0.01)
        async for page in read_digest(export_id, **paging):
            yield page

    monkeypatch.setattr(store, "iter_ledger_digest", digest_once_asked)
    second = await run_now(services, export)
    assert fake.state.requests_to(*asked) == before + 1
    c = second.counts
    assert (c.contacts_sent, c.skipped_unchanged) == (1, PROFILES - 1)


async def test_a_full_resync_sends_everything_and_a_changed_list_resets_the_ledger(
    services: Services, fake: RunningFake
) -> None:
    export = await seeded(services, fake, SyncMode.SEND_CHANGES)
    await run_now(services, export)
    again = await run_now(services, export, full_resync=True)
    assert (again.counts.contacts_sent, again.counts.skipped_unchanged) == (PROFILES, 0)
    assert again.message is None

    other_list = fake.state.add_list("Other list")
    export.settings = {"listId": other_list}
    await services.store.save_export(export)
    moved = await run_now(services, export)
    assert moved.counts.contacts_sent == PROFILES
    assert moved.message is not None
    assert "list" in moved.message
    assert len(fake.state.list_members(other_list)) == PROFILES
    after = await run_now(services, export)
    assert (after.counts.contacts_sent, after.message) == (0, None)


async def test_an_interrupted_mirror_run_resumes_with_exact_counts_and_an_exact_list(
    services: Services, fake: RunningFake
) -> None:
    export = await seeded(services, fake, SyncMode.MIRROR)
    await run_now(services, export)
    members, _ = await changed_world(services, export)
    run = await services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "alice")

    job = asyncio.create_task(execute_run(services.run_context, run.id))
    while True:  # until the removal phase has recorded a call (2 members per call)
        current = await services.store.get_run(run.id)
        assert current is not None
        assert not current.status.is_terminal, current.message
        if current.counts.removed_from_list >= 2:
            break
        await asyncio.sleep(0.01)
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    interrupted = await services.store.get_run(run.id)
    assert interrupted is not None
    assert interrupted.status is ExportRunStatus.RUNNING

    done = await execute_run(services.run_context, run.id)
    assert done is not None
    assert done.status is ExportRunStatus.SUCCEEDED, done.message
    c = done.counts
    add_up(c)
    assert (c.profiles_read, c.contacts_sent, c.skipped_unchanged) == (98, 13, 85)
    assert (c.removed_from_list, c.removals_failed) == (5, 0)
    assert c.accepted_by_destination == 13
    assert fake.state.list_members(NEWSLETTER_LIST) == {email(i) for i in members}


async def test_a_mirror_run_resumed_after_an_unanswered_send_owns_what_it_sent(
    services: Services, fake: RunningFake
) -> None:
    """Stopped once its first import was on the list but before Constant Contact's answer
    came (so before its checkpoint), the run resumes judging memberships by the list as
    it first found it: what its stopped attempt put there is the export's own, and a
    mirror takes it off when its contacts leave."""
    export = await seeded(services, fake, SyncMode.MIRROR)
    put_on_list(fake, email(1))  # on the list before the export: not its own
    # Every answer held back a second after the request was carried out.
    fake.state.configure(slow_share=1.0, slow_seconds=1.0)
    run = await services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "alice")
    job = asyncio.create_task(execute_run(services.run_context, run.id))
    while len(fake.state.list_members(NEWSLETTER_LIST)) < 40:  # the first import's 40
        assert not job.done()
        await asyncio.sleep(0.01)
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    assert await services.store.count_ledger(export.id) == 0  # no answer, no checkpoint

    fake.state.configure(slow_share=0.0)
    done = await execute_run(services.run_context, run.id)
    assert done is not None
    assert done.status is ExportRunStatus.SUCCEEDED, done.message
    assert (done.counts.contacts_sent, done.counts.accepted_by_destination) == (PROFILES, PROFILES)

    # Five of the first import's contacts leave, and the one that was there before.
    await services.store.upsert_profiles([replace(person(i), segment_ids=[]) for i in range(6)])
    after = await run_now(services, export)
    assert (after.counts.removed_from_list, after.counts.removals_failed) == (5, 0)
    expected = {email(i) for i in range(6, PROFILES)} | {email(1)}
    assert fake.state.list_members(NEWSLETTER_LIST) == expected


def put_on_list(fake: RunningFake, address: str, *, unsubscribed: bool = False) -> None:
    """A contact of the fake account made before segport ran: on the list, or unsubscribed
    (then on no list)."""
    key = address.lower()
    lists = frozenset() if unsubscribed else frozenset({NEWSLETTER_LIST})
    fake.state.contacts[key] = FakeContact(f"before-{key}", address, {}, lists, unsubscribed)
    if not unsubscribed:
        fake.state.lists[NEWSLETTER_LIST].members.add(key)


async def test_a_mirror_leaves_on_the_list_the_members_it_did_not_put_there(
    services: Services, fake: RunningFake
) -> None:
    export = await seeded(services, fake, SyncMode.MIRROR)
    put_on_list(fake, email(50))  # in the segment, and on the list before the first run
    put_on_list(fake, "outsider@example.com")  # never in the segment
    first = await run_now(services, export)
    assert (first.counts.contacts_sent, first.counts.removed_from_list) == (PROFILES, 0)
    assert len(fake.state.list_members(NEWSLETTER_LIST)) == PROFILES + 1

    members, _ = await changed_world(services, export)  # 50 to 54 leave
    preview = await preview_export(services.run_context, export)
    second = await run_now(services, export)
    c = second.counts
    add_up(c)
    assert (c.removed_from_list, c.removals_failed) == (4, 0)
    assert preview.to_remove == 4
    expected = {email(i) for i in members} | {email(50), "outsider@example.com"}
    assert fake.state.list_members(NEWSLETTER_LIST) == expected

    # Back in the segment and out again: still not this export's membership.
    await services.store.upsert_profiles([replace(person(50), segment_ids=export.segment_ids[:1])])
    assert (await run_now(services, export)).counts.contacts_sent == 1
    await services.store.upsert_profiles([replace(person(50), segment_ids=[])])
    third = await run_now(services, export)
    assert (third.counts.removed_from_list, third.counts.removals_failed) == (0, 0)
    assert email(50) in fake.state.list_members(NEWSLETTER_LIST)


@pytest.mark.parametrize("mode", [SyncMode.SEND_CHANGES, SyncMode.MIRROR])
async def test_unsubscribed_contacts_stay_cannot_add_and_are_not_sent_again(
    services: Services, fake: RunningFake, mode: SyncMode
) -> None:
    export = await seeded(services, fake, mode)
    put_on_list(fake, email(3), unsubscribed=True)  # unsubscribed before segport ran
    fake.state.configure(unsubscribed={email(4)})  # unsubscribes as it is first imported
    first = await run_now(services, export)
    assert (first.counts.contacts_sent, first.counts.cannot_add_to_list) == (PROFILES, 2)
    imports = fake.state.requests_to("POST", "/v3/activities/contacts_json_import")

    for _ in range(2):
        later = await run_now(services, export)
        c = later.counts
        add_up(c)
        assert (c.contacts_sent, c.skipped_unchanged, c.cannot_add_to_list) == (0, PROFILES, 2)
        assert fake.state.requests_to("POST", "/v3/activities/contacts_json_import") == imports

    # Changed, it is sent again (Constant Contact keeps its fields), and still counted.
    await services.store.upsert_profiles(
        [replace(person(3, "Changed"), segment_ids=export.segment_ids)]
    )
    changed = await run_now(services, export)
    assert (changed.counts.contacts_sent, changed.counts.cannot_add_to_list) == (1, 2)
    assert fake.state.contacts[email(3)].fields["first_name"] == "Changed3"

    # Leaving, neither is asked off a list it never was on.
    await services.store.upsert_profiles(
        [replace(person(3), segment_ids=[]), replace(person(4), segment_ids=[])]
    )
    removals = fake.state.requests_to("POST", "/v3/activities/remove_list_memberships")
    left = await run_now(services, export)
    assert (left.counts.removed_from_list, left.counts.removals_failed) == (0, 0)
    assert left.counts.cannot_add_to_list == 0
    assert fake.state.requests_to("POST", "/v3/activities/remove_list_memberships") == removals
    assert len(fake.state.list_members(NEWSLETTER_LIST)) == PROFILES - 2


async def test_a_whole_list_mirror_removes_every_member_outside_the_segments_once_previewed(
    services: Services, fake: RunningFake
) -> None:
    export = await seeded(services, fake, SyncMode.MIRROR)
    put_on_list(fake, email(50))  # in the segment before the first run, then leaving
    put_on_list(fake, "outsider@example.com")
    await run_now(services, export)
    members, _ = await changed_world(services, export)  # 50 to 54 leave

    ordinary = await preview_export(services.run_context, export)
    assert (ordinary.to_remove, ordinary.whole_list_confirmation) == (4, None)
    preview = await preview_export(services.run_context, export, whole_list=True)
    assert (preview.to_remove, preview.outside_export) == (6, 2)
    token = preview.whole_list_confirmation
    assert token is not None
    seal = services.run_context.seal
    assert confirmed_cap(seal, export.id, token) == 2
    with pytest.raises(ConfirmationError, match="another export"):
        confirmed_cap(seal, "another-export", token)
    with pytest.raises(ConfirmationError, match="expired"):
        confirmed_cap(seal, export.id, token, now=time.time() + CONFIRMATION_SECONDS + 1)
    with pytest.raises(ConfirmationError, match="not a confirmation"):
        confirmed_cap(seal, export.id, "made-up")

    # The list grew since the preview: the run removes its own leavers, no other member.
    put_on_list(fake, "late@example.com")
    grown = await run_now(services, export, whole_list=2)
    assert (grown.counts.removed_from_list, grown.counts.removals_failed) == (4, 0)
    assert "WHOLE_LIST_GREW" in [e.code for e in grown.errors]
    assert {"outsider@example.com", "late@example.com", email(50)} <= fake.state.list_members(
        NEWSLETTER_LIST
    )

    again = await preview_export(services.run_context, export, whole_list=True)
    assert (again.to_remove, again.outside_export) == (3, 3)
    whole = await run_now(services, export, whole_list=again.outside_export)
    c = whole.counts
    add_up(c)
    assert (c.removed_from_list, c.removals_failed) == (3, 0)
    assert fake.state.list_members(NEWSLETTER_LIST) == {email(i) for i in members}
    assert len(fake.state.contacts) == PROFILES + 3 + 2  # off the list, not the account


async def test_a_finished_run_leaves_nothing_journalled(
    services: Services, fake: RunningFake, tmp_path: Path
) -> None:
    """What a run journalled is folded into its ledger once the run has ended, not left for
    the next run (or reader) to merge."""
    export = await seeded(services, fake, SyncMode.SEND_CHANGES)
    await run_now(services, export)
    if services.settings.database_url.startswith("sqlite:///"):
        with closing(sqlite3.connect(tmp_path / "sync.db")) as db:
            left = db.execute("SELECT COUNT(*) FROM ledger_journal").fetchone()[0]
    else:
        runs = services.store._db["runs"]  # type: ignore[attr-defined]
        left = await runs.count_documents({JOURNAL_FIELD: {"$exists": True}})
    assert left == 0
    assert await services.store.count_ledger(export.id) == PROFILES
