"""A preview split with a helper process counts exactly as one walk of the whole segment.

The helper walks the second half of the segment in a new interpreter (on both stores,
with real HTTP to the fake Constant Contact for the runs between previews); every
preview here is compared, number for number and sample for sample, with the same
preview walked in this process alone.
"""

from __future__ import annotations

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
    ExportRunStatus,
    ExportRunTrigger,
    Profile,
    SyncMode,
    SyncPreview,
)
from service.runs.context import RunContext
from service.runs.helper import HelperFailed, in_helper_process
from service.runs.lifecycle import execute_run
from service.runs.preview import preview_export
from tests.runs.cc_world import ConstantContactPlugin, fast_cc_settings
from tests.runs.cc_world import seed_cc_export as seed_export
from tests.support.settings import make_settings

PROFILES = 60
"""The helper takes the second half (after the 30th of 60)."""


@pytest.fixture
def fake() -> Iterator[RunningFake]:
    with run_fake(seed=5, requests_per_second=50) as running:
        yield running


@pytest.fixture(params=["sqlite", "mongo"])
async def services(
    request: pytest.FixtureRequest, tmp_path: Path, fake: RunningFake
) -> AsyncIterator[Services]:
    destination = ConstantContact(fast_cc_settings(fake))
    destination.limits = replace(destination.limits, requests_per_second=50)
    database_url = (
        f"sqlite:///{tmp_path / 'split.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("mongo_database_url")
    )
    settings = make_settings(database_url, run_read_batch_size=7, split_min_profiles=PROFILES - 10)
    async with open_services(
        settings, extra_plugins=[ConstantContactPlugin(destination)], load_entry_points=False
    ) as opened:
        await opened.queue.aclose()  # the tests drive each run's job
        yield opened


@pytest.fixture
def helper_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """How each of the previews' helper calls ended ("ok", or the failure)."""
    calls: list[str] = []
    real = in_helper_process

    async def recorded(function: Any, *args: Any) -> Any:
        try:
            answer = await real(function, *args)
        except HelperFailed as exc:
            calls.append(str(exc))
            raise
        calls.append("ok")
        return answer

    monkeypatch.setattr("service.runs.preview.in_helper_process", recorded)
    return calls


def person(i: int, first: str = "First", *, email: int | None = None) -> Profile:
    return Profile(
        id=f"p{i:04d}",
        attributes={
            "EmailAddress": f"Person{i if email is None else email}@Example.com",
            "FirstName": f"{first}{i}",
        },
    )


def alone(ctx: RunContext) -> RunContext:
    """``ctx``, previewing in this process only."""
    return replace(ctx, settings=replace(ctx.settings, split_min_profiles=0))


async def both_ways(services: Services, export: Export) -> SyncPreview:
    """The split preview, checked against the one walked here alone."""
    split = await preview_export(services.run_context, export)
    assert split == await preview_export(alone(services.run_context), export)
    return split


async def seeded(services: Services, fake: RunningFake, profiles: list[Profile]) -> Export:
    export = await seed_export(services, fake, profiles)
    export.sync_mode = SyncMode.MIRROR
    export.field_mapping = export.field_mapping[:2]  # EmailAddress, FirstName
    await services.store.save_export(export)
    return export


async def run_now(services: Services, export: Export) -> None:
    run = await services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "alice")
    done = await execute_run(services.run_context, run.id)
    assert done is not None
    assert done.status is ExportRunStatus.SUCCEEDED, done.message


async def test_a_split_preview_counts_duplicates_invalid_records_and_warnings_as_one_walk(
    services: Services, fake: RunningFake, helper_calls: list[str]
) -> None:
    profiles = [person(i) for i in range(PROFILES)]
    for i in (3, 40):  # invalid, one in each half
        profiles[i].attributes["EmailAddress"] = "not an address"
    profiles[45] = person(45, email=5)  # the helper's record that the first half took
    profiles[46] = person(46, "x" * 60, email=6)  # the same, with a field warning
    profiles[52] = person(52, email=50)  # a duplicate within the helper's half
    profiles[47].attributes["FirstName"] = "y" * 60  # a field warning the run counts
    export = await seeded(services, fake, profiles)

    first = await both_ways(services, export)

    assert (first.to_add, first.to_update, first.unchanged) == (55, 0, 0)
    assert (first.skipped_invalid, first.skipped_duplicate, first.field_warnings) == (2, 3, 1)
    assert [c.profile_id for c in first.sample] == [f"p{i:04d}" for i in range(21) if i != 3]

    await run_now(services, export)
    changed = [person(i, "Changed") for i in (1, 2, 41, 42)]
    changed.append(person(45, "Changed", email=5))  # still the first half's duplicate
    left = replace(person(55), segment_ids=[])
    for profile in changed:
        profile.segment_ids = list(export.segment_ids)
    await services.store.upsert_profiles([*changed, left])

    second = await both_ways(services, export)

    assert (second.to_add, second.to_update, second.unchanged) == (0, 4, 50)
    assert (second.skipped_duplicate, second.to_remove) == (3, 1)
    assert [c.profile_id for c in second.sample] == ["p0001", "p0002", "p0041", "p0042"]
    assert helper_calls == ["ok", "ok"]


async def test_a_helper_that_fails_leaves_the_rest_of_the_walk_to_this_process(
    services: Services, fake: RunningFake, helper_calls: list[str]
) -> None:
    export = await seeded(services, fake, [person(i) for i in range(PROFILES)])
    ctx = services.run_context
    assert ctx.helper_settings is not None
    # The helper cannot open the ledger's seal without the encryption key.
    broken = replace(
        ctx, helper_settings=ctx.helper_settings.model_copy(update={"encryption_key": None})
    )

    preview = await preview_export(broken, export)

    assert preview == await preview_export(alone(ctx), export)
    assert preview.to_add == PROFILES
    assert len(helper_calls) == 1
    assert "SEGPORT_ENCRYPTION_KEY is not set" in helper_calls[0]


async def test_a_sample_the_helper_cannot_complete_is_walked_here_from_the_start(
    services: Services, fake: RunningFake, helper_calls: list[str]
) -> None:
    # The helper's first 22 profiles repeat the first half's addresses; after a run, only
    # they and the last three change. One walk samples the last three only; the helper,
    # not knowing the first half, samples its first twenty.
    profiles = [person(i) for i in range(30)]
    profiles += [person(i, email=i - 30) for i in range(30, 52)]
    profiles += [person(i) for i in range(52, PROFILES)]
    export = await seeded(services, fake, profiles)
    await run_now(services, export)
    changed = [person(i, "Changed", email=i - 30) for i in range(30, 52)]
    changed += [person(i, "Changed") for i in range(57, PROFILES)]
    for profile in changed:
        profile.segment_ids = list(export.segment_ids)
    await services.store.upsert_profiles(changed)

    preview = await both_ways(services, export)

    assert (preview.to_update, preview.unchanged, preview.skipped_duplicate) == (3, 35, 22)
    assert [c.profile_id for c in preview.sample] == ["p0057", "p0058", "p0059"]
    assert helper_calls == ["ok"]  # its answer came, and could not be joined
