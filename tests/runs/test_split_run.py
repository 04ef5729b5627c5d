"""A changes run whose second half a helper process walks counts and sends as one walk.

On both stores, with real HTTP to the fake Constant Contact: after a first run, profiles
change in both halves of the segment; the next SEND_CHANGES run has a helper process
walk the second half (service.runs.split_run). Its counts, errors, uploads and ledger
are those of one walk, checked against the preview walked in one process and against
what the fake then holds; so when the helper stops early or fails.
"""

from __future__ import annotations

import pickle
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from segport_constant_contact import ConstantContact
from segport_constant_contact.fake import RunningFake, run_fake

from service.core import Services, open_services
from service.domain import (
    Export,
    ExportRun,
    ExportRunStatus,
    ExportRunTrigger,
    Profile,
    RunError,
    SyncMode,
)
from service.plugins.api import Rejection
from service.plugins.manager import load_destinations
from service.runs.context import RunContext
from service.runs.helper import Done, HelperFailed, helper_messages
from service.runs.ledger_index import KeySet
from service.runs.lifecycle import execute_run
from service.runs.mapping import RecordMapper, SeenKeys
from service.runs.preview import preview_export
from service.runs.split_run import WalkedBatch
from service.runs.sync import SyncPlan, Unchanged
from tests.runs.cc_world import NEWSLETTER_LIST, ConstantContactPlugin, fast_cc_settings
from tests.runs.cc_world import seed_cc_export as seed_export
from tests.support.settings import make_settings

PROFILES = 60
"""The helper walks the profiles after the 30th."""


@pytest.fixture
def fake() -> Iterator[RunningFake]:
    with run_fake(seed=9, requests_per_second=50) as running:
        yield running


@pytest.fixture(params=["sqlite", "mongo"])
async def services(
    request: pytest.FixtureRequest, tmp_path: Path, fake: RunningFake
) -> AsyncIterator[Services]:
    destination = ConstantContact(fast_cc_settings(fake))
    # Imports of 4 contacts: several in each half.
    destination.limits = replace(destination.limits, batch_max_records=4, requests_per_second=50)
    database_url = (
        f"sqlite:///{tmp_path / 'split.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("mongo_database_url")
    )
    settings = make_settings(database_url, run_read_batch_size=7, split_min_profiles=50)
    async with open_services(
        settings, extra_plugins=[ConstantContactPlugin(destination)], load_entry_points=False
    ) as opened:
        await opened.queue.aclose()  # the tests drive each run's job
        yield opened


@pytest.fixture
def helper_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """How each of the runs' helper calls ended ("ok", or the failure)."""
    calls: list[str] = []

    async def recorded(function: Any, *args: Any) -> AsyncIterator[bytes | Done]:
        try:
            async for item in helper_messages(function, *args):
                if isinstance(item, Done):
                    calls.append("ok")
                yield item
        except HelperFailed as exc:
            calls.append(str(exc))
            raise

    monkeypatch.setattr("service.runs.stages.helper_messages", recorded)
    return calls


def person(i: int, first: str = "First", *, email: int | None = None) -> Profile:
    return Profile(
        id=f"p{i:04d}",
        attributes={
            "EmailAddress": f"Person{i if email is None else email}@Example.com",
            "FirstName": f"{first}{i}",
        },
    )


def address(i: int) -> str:
    return f"person{i}@example.com"


def alone(ctx: RunContext) -> RunContext:
    return replace(ctx, settings=replace(ctx.settings, split_min_profiles=0))


async def run_now(ctx: RunContext, services: Services, export: Export) -> ExportRun:
    run = await services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "alice")
    done = await execute_run(ctx, run.id)
    assert done is not None
    assert done.status is ExportRunStatus.SUCCEEDED, done.message
    return done


async def world(services: Services, fake: RunningFake) -> Export:
    """60 profiles, an invalid one and a duplicate of the first half in the second; a
    first run sends them. Then four change (two in each half), a duplicate of the first
    half changes too (it stays a duplicate) and one of the second half takes the address
    of a first-half profile."""
    profiles = [person(i) for i in range(PROFILES)]
    profiles[40].attributes["EmailAddress"] = "not an address"
    profiles[45] = person(45, email=5)
    export = await seed_export(services, fake, profiles)
    export.sync_mode = SyncMode.SEND_CHANGES
    export.field_mapping = export.field_mapping[:2]  # EmailAddress, FirstName
    await services.store.save_export(export)
    first = await run_now(services.run_context, services, export)
    assert (first.counts.contacts_sent, first.counts.skipped_duplicate) == (58, 1)

    changed = [person(i, "Changed") for i in (1, 2, 41, 42)]
    changed.append(person(45, "Changed", email=5))
    changed.append(person(50, "Moved", email=7))
    changed[3].attributes["FirstName"] = "y" * 60  # cut, with a field warning
    for profile in changed:
        profile.segment_ids = list(export.segment_ids)
    await services.store.upsert_profiles(changed)
    return export


async def test_a_split_changes_run_counts_and_sends_as_one_walk(
    services: Services, fake: RunningFake, helper_calls: list[str]
) -> None:
    export = await world(services, fake)
    preview = await preview_export(alone(services.run_context), export)
    assert (preview.to_update, preview.unchanged, preview.skipped_duplicate) == (4, 53, 2)

    run = await run_now(services.run_context, services, export)

    c = run.counts
    assert helper_calls == ["ok"]
    assert (c.profiles_read, c.contacts_sent, c.skipped_unchanged) == (60, 4, 53)
    assert (c.skipped_invalid, c.skipped_duplicate, c.field_warnings) == (1, 2, 1)
    assert c.contacts_sent == preview.to_add + preview.to_update
    assert c.accepted_by_destination == 4
    duplicates = sorted(e.profile_id or "" for e in run.errors if e.code == "DUPLICATE")
    assert duplicates == ["p0045", "p0050"]  # the second half's, found by the run
    assert [e.profile_id for e in run.errors if e.field == "first_name"] == ["p0042"]
    contacts = fake.state.contacts
    assert contacts[address(41)].fields["first_name"] == "Changed41"
    assert contacts[address(5)].fields["first_name"] == "First5"  # p0045 was not sent
    assert contacts[address(7)].fields["first_name"] == "First7"  # nor p0050
    assert len(fake.state.list_members(NEWSLETTER_LIST)) == 58

    again = await run_now(services.run_context, services, export)
    assert (again.counts.contacts_sent, again.counts.skipped_unchanged) == (0, 57)
    assert helper_calls == ["ok", "ok"]


async def test_a_helper_that_stops_early_leaves_the_rest_of_the_walk_to_the_run(
    services: Services, fake: RunningFake, helper_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    export = await world(services, fake)
    monkeypatch.setattr("service.runs.split_run.MOST_TO_SEND", 1)  # one read batch

    run = await run_now(services.run_context, services, export)

    c = run.counts
    assert helper_calls == ["ok"]
    assert (c.profiles_read, c.contacts_sent, c.skipped_unchanged) == (60, 4, 53)
    assert (c.skipped_invalid, c.skipped_duplicate, c.field_warnings) == (1, 2, 1)
    assert fake.state.contacts[address(42)].fields["first_name"] == "y" * 50


async def test_a_helper_that_fails_leaves_the_second_half_to_the_run(
    services: Services, fake: RunningFake, helper_calls: list[str]
) -> None:
    export = await world(services, fake)
    ctx = services.run_context
    assert ctx.helper_settings is not None
    broken = replace(
        ctx, helper_settings=ctx.helper_settings.model_copy(update={"encryption_key": None})
    )

    run = await run_now(broken, services, export)

    c = run.counts
    assert len(helper_calls) == 1
    assert "SEGPORT_ENCRYPTION_KEY is not set" in helper_calls[0]
    assert (c.profiles_read, c.contacts_sent, c.skipped_unchanged) == (60, 4, 53)
    assert c.skipped_duplicate == 2


async def test_runs_that_send_everything_or_mirror_walk_alone(
    services: Services, fake: RunningFake, helper_calls: list[str]
) -> None:
    export = await world(services, fake)
    for mode in (SyncMode.SEND_ALL, SyncMode.MIRROR):
        export.sync_mode = mode
        await services.store.save_export(export)
        await run_now(services.run_context, services, export)
    assert helper_calls == []


async def test_a_walked_batch_is_the_classification_it_was_kept_from(
    services: Services, fake: RunningFake
) -> None:
    export = await world(services, fake)
    ctx = services.run_context
    destination = ctx.find_destination(export.destination_type)
    assert destination is not None
    plan = SyncPlan(
        store=services.store,
        seal=ctx.seal,
        export=export,
        run_no=7,
        skip_unchanged=True,
        removes=False,
    )
    await plan.load_index()
    # One unchanged contact and one changed one the destination now keeps off the list.
    plan.cannot_add = KeySet([ctx.seal.key_id(address(3)), ctx.seal.key_id(address(41))])
    batches = [b async for b in services.store.iter_segment_members(export.segment_ids)]
    profiles = [p for batch in batches for p in batch]
    with RecordMapper(destination, export.field_mapping) as mapper:
        classified = await plan.classify(mapper, profiles, keep_keyed=True)
    assert Unchanged(True, ctx.seal.key_id(address(3))) in classified.outcomes
    assert classified.marked  # p0041's entry is written CANNOT_ADD once confirmed

    walked = pickle.loads(pickle.dumps(WalkedBatch.of(profiles, classified)))  # noqa: S301
    again, ids = walked.classified(SeenKeys())

    assert ids == [p.id for p in profiles]
    assert again.outcomes == classified.outcomes
    assert [list(w) for w in again.warnings] == [list(w) for w in classified.warnings]
    assert (again.entries, again.marked) == (classified.entries, classified.marked)
    assert walked.to_send == 4
    # A key the run took before (in the first half): that record is a duplicate.
    seen = SeenKeys()
    seen.add_many([address(41)])
    taken, _ = walked.classified(seen)
    position = ids.index("p0041")
    out = taken.outcomes[position]
    assert isinstance(out, RunError)
    assert (out.code, out.profile_id) == ("DUPLICATE", "p0041")
    assert taken.entries[position] is None
    assert position not in taken.marked


@pytest.mark.parametrize(
    ("kind", "values"),
    [
        ("constant_contact", {"email": " Zoe@Example.com ", "first_name": "Zoë" + "x" * 60}),
        ("mailchimp", {"email_address": "Zoe@Example.com", "merge:FNAME": "Zoë"}),
        ("toy_webhook", {"email": "Zoe@Example.com", "name": "Zoë"}),
    ],
)
def test_the_bundled_destinations_travel_to_a_helper_and_map_alike_there(
    kind: str, values: dict[str, str]
) -> None:
    destination = load_destinations().get(kind)
    assert destination is not None

    copy = pickle.loads(pickle.dumps(destination))  # noqa: S301

    assert copy.build_record_with_warnings(values) == destination.build_record_with_warnings(values)
    record = destination.build_record(values)
    assert not isinstance(record, Rejection)
    assert copy.encode_record(record) == destination.encode_record(record)
    assert copy.record_dedupe_key(record) == destination.record_dedupe_key(record)
    assert copy.limits == destination.limits
