"""Mailchimp sync modes on both stores, real HTTP to the fake: a SEND_CHANGES run sends
exactly what changed, and a MIRROR run archives exactly the members who left the segment
(never deleting them for good), within the key's 10 requests in flight."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from segport_mailchimp import Mailchimp
from segport_mailchimp.fake import CUSTOMERS_LIST_ID, DEMO_API_KEY, RunningFake, run_fake

from service.connections.credentials import seal_credentials
from service.core import Services, open_services
from service.domain import (
    Export,
    ExportRun,
    ExportRunStatus,
    ExportRunTrigger,
    FieldMapping,
    Profile,
    SyncMode,
)
from service.runs.lifecycle import execute_run
from tests.mailchimp.mc_world import MailchimpPlugin, fast_mc_settings
from tests.support.records import make_plain_connection, make_plain_export, make_segment
from tests.support.settings import make_settings

PROFILES = 120


@pytest.fixture
def fake() -> Iterator[RunningFake]:
    with run_fake(seed=37, latency_seconds=0.01) as running:
        yield running


@pytest.fixture(params=["sqlite", "mongo"])
async def services(
    request: pytest.FixtureRequest, tmp_path: Path, fake: RunningFake
) -> AsyncIterator[Services]:
    destination = Mailchimp(fast_mc_settings(fake))
    destination.limits = replace(
        destination.limits, batch_max_records=25, removal_batch_max_records=4
    )
    database_url = (
        f"sqlite:///{tmp_path / 'mirror.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("mongo_database_url")
    )
    settings = make_settings(database_url, run_read_batch_size=30, run_heartbeat_seconds=0.2)
    async with open_services(
        settings, extra_plugins=[MailchimpPlugin(destination)], load_entry_points=False
    ) as opened:
        await opened.queue.aclose()  # the tests drive each run's job
        yield opened


def person(i: int, segment_id: str, first: str = "First") -> Profile:
    return Profile(
        id=f"p{i:04d}",
        attributes={"EmailAddress": f"Person{i}@Shop.example", "FirstName": f"{first}{i}",
                    "City": "Lyon"},
        segment_ids=[segment_id] if segment_id else [],
    )  # fmt: skip


async def seeded(services: Services, mode: SyncMode) -> tuple[Export, str]:
    connection = make_plain_connection(
        "mailchimp",
        "Mailchimp",
        credentials=seal_credentials(services.cipher, secrets={"apiKey": DEMO_API_KEY}),
    )
    await services.store.save_connection(connection)
    segment = make_segment(name="Customers", description=None)
    await services.store.save_segment(segment)
    await services.store.upsert_profiles([person(i, segment.id) for i in range(PROFILES)])
    export = make_plain_export(
        connection,
        [segment.id],
        [
            FieldMapping("EmailAddress", "email_address"),
            FieldMapping("FirstName", "FNAME"),
            FieldMapping("City", "CITY"),
        ],
        settings={"listId": CUSTOMERS_LIST_ID, "statusIfNew": "subscribed"},
    )
    export.sync_mode = mode
    await services.store.save_export(export)
    return export, segment.id


async def run_now(services: Services, export: Export) -> ExportRun:
    run = await services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "admin")
    done = await execute_run(services.run_context, run.id)
    assert done is not None
    assert done.status is ExportRunStatus.SUCCEEDED, done.message
    return done


def active(fake: RunningFake) -> set[str]:
    return {m.email_address.lower() for m in fake.state.audience(CUSTOMERS_LIST_ID).active()}


@pytest.mark.parametrize("mode", [SyncMode.SEND_CHANGES, SyncMode.MIRROR])
async def test_a_mirror_run_archives_exactly_the_members_who_left(
    services: Services, fake: RunningFake, mode: SyncMode
) -> None:
    export, segment_id = await seeded(services, mode)
    first = await run_now(services, export)
    assert first.counts.contacts_sent == PROFILES
    assert len(active(fake)) == PROFILES

    left = range(30, 41)  # 11 leave the segment
    changed = range(0, 7)  # 7 change their first name
    await services.store.upsert_profiles(
        [person(i, "") for i in left] + [person(i, segment_id, "Changed") for i in changed]
    )
    second = await run_now(services, export)

    c = second.counts
    assert c.contacts_sent == len(changed)
    assert c.accepted_by_destination == len(changed)
    removed = len(left) if mode is SyncMode.MIRROR else 0
    assert (c.removed_from_list, c.removals_failed) == (removed, 0)
    everyone = {f"person{i}@shop.example" for i in range(PROFILES)}
    leavers = {f"person{i}@shop.example" for i in left}
    assert active(fake) == (everyone - leavers if mode is SyncMode.MIRROR else everyone)
    audience = fake.state.audience(CUSTOMERS_LIST_ID)
    archived = {m.email_address.lower() for m in audience.members.values()
                if m.status == "archived"}  # fmt: skip
    assert archived == (leavers if mode is SyncMode.MIRROR else set())
    assert not any(m.forgotten for m in audience.members.values())
    assert not any("delete-permanent" in r.path for r in fake.state.requests)
    assert fake.state.peak_in_flight[DEMO_API_KEY] <= 10
    assert fake.state.over_cap_refusals == 0

    third = await run_now(services, export)
    assert (third.counts.contacts_sent, third.counts.removed_from_list) == (0, 0)
