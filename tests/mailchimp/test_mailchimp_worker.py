"""Distributed mode with Mailchimp: ``segport worker`` processes on real Redis (database 5)
and a shared store, SQLite and MongoDB. A worker SIGKILLed in the middle of a run is
resumed by another with exact counts, and the workers together never have more than 10
requests in flight for the key (the Redis-backed cap; the dead worker's slots come back
after their lease)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from segport_mailchimp import Mailchimp
from segport_mailchimp.fake import CUSTOMERS_LIST_ID, DEMO_API_KEY, RunningFake, run_fake

from service.connections.credentials import seal_credentials
from service.core import Services, open_services
from service.domain import ExportRunStatus, ExportRunTrigger, FieldMapping
from tests.mailchimp.mc_world import (
    CITY_MISSING,
    COMPLIANCE,
    FAKE_ADDRESSES,
    MailchimpPlugin,
    fast_mc_environment,
    fast_mc_settings,
    mc_profiles,
    seed_compliance,
)
from tests.support.net import free_port
from tests.support.records import make_plain_connection, make_plain_export, make_segment
from tests.support.redis_db import flushed_redis, shared_redis_url
from tests.support.settings import TEST_ENCRYPTION_KEY, TEST_JWT_SECRET, make_settings
from tests.support.workers import wait_for_end, wait_for_sent

REDIS_URL = shared_redis_url(5)
LEASE = "1.0"


@dataclass(frozen=True)
class Size:
    profiles: int
    batch: int


SIZES = {"sqlite": Size(3000, 50), "mongo": Size(300, 10)}
"""The run on each store. The MongoDB wire server the tests use (mongoeco) writes in time
that grows with the collection (see tests/mailchimp/test_mailchimp_e2e.py), so its run is
a few hundred profiles, in small batches so the kill still lands mid-run (30 calls)."""
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake() -> Iterator[RunningFake]:
    with run_fake(seed=23, latency_seconds=0.05) as running:
        yield running


@pytest.fixture(params=["sqlite", "mongo"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def size(store_kind: str) -> Size:
    return SIZES[store_kind]


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path, store_kind: str) -> str:
    if store_kind == "sqlite":
        return f"sqlite:///{tmp_path / 'dist.db'}"
    return str(request.getfixturevalue("mongo_database_url"))


@pytest.fixture
async def services(database_url: str, size: Size, fake: RunningFake) -> AsyncIterator[Services]:
    destination = Mailchimp(fast_mc_settings(fake))
    destination.limits = replace(destination.limits, batch_max_records=size.batch)
    settings = make_settings(database_url, redis_url=REDIS_URL)
    async with (
        flushed_redis(REDIS_URL),
        open_services(
            settings, extra_plugins=[MailchimpPlugin(destination)], load_entry_points=False
        ) as opened,
    ):
        yield opened


@pytest.fixture
def workers(services: Services, fake: RunningFake) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in started:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_worker(services: Services, fake: RunningFake, batch: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        **fast_mc_environment(fake),
        "SEGPORT_DATABASE_URL": services.settings.database_url,
        "SEGPORT_MONGODB_TIMEOUT_MS": str(services.settings.mongodb_timeout_ms),
        "SEGPORT_REDIS_URL": REDIS_URL,
        "SEGPORT_JWT_SECRET": TEST_JWT_SECRET,
        "SEGPORT_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
        "SEGPORT_RUN_HEARTBEAT_SECONDS": "0.3",
        "SEGPORT_SCHEDULE_TICK_SECONDS": "0.3",
        "SEGPORT_IN_FLIGHT_LEASE_SECONDS": LEASE,
        "SEGPORT_LOG_LEVEL": "WARNING",
        "SEGPORT_WORKER_METRICS_PORT": str(free_port()),
        "TEST_BATCH_MAX_RECORDS": str(batch),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "tests.mailchimp.worker_process"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def test_a_run_of_a_sigkilled_worker_is_resumed_by_another_with_exact_counts(
    services: Services, fake: RunningFake, workers: list[subprocess.Popen[bytes]], size: Size
) -> None:
    profiles, batch = size.profiles, size.batch
    connection = make_plain_connection(
        "mailchimp",
        "Marketing Mailchimp",
        credentials=seal_credentials(services.cipher, secrets={"apiKey": DEMO_API_KEY}),
    )
    await services.store.save_connection(connection)
    segment = make_segment(name="Customers", description=None)
    await services.store.save_segment(segment)
    await services.store.upsert_profiles(list(mc_profiles(profiles, segment.id)))
    seed_compliance(fake, CUSTOMERS_LIST_ID)
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
    await services.store.save_export(export)

    first = start_worker(services, fake, batch)
    workers.append(first)
    run = await services.runs.request_run(export.id, ExportRunTrigger.ON_DEMAND, "admin")
    await wait_for_sent(services, run.id, 5 * batch)
    first.send_signal(signal.SIGKILL)
    first.wait()
    killed = await services.store.get_run(run.id)
    assert killed is not None
    assert killed.status is ExportRunStatus.RUNNING
    assert killed.counts.contacts_sent < profiles

    workers.append(start_worker(services, fake, batch))
    workers.append(start_worker(services, fake, batch))
    done = await wait_for_end(services, run.id)

    assert done.status is ExportRunStatus.SUCCEEDED, done.message
    c = done.counts
    invalid = len(FAKE_ADDRESSES) + len([i for i in CITY_MISSING if i < profiles])
    assert (c.profiles_read, c.contacts_sent, c.skipped_invalid, c.skipped_duplicate) == (
        profiles + 2,
        profiles,
        1,
        1,
    )
    assert c.cannot_add_to_list == len(COMPLIANCE)
    assert c.rejected_by_destination == invalid
    assert c.accepted_by_destination == profiles - invalid - len(COMPLIANCE)
    assert done.attempt == 2
    audience = fake.state.audience(CUSTOMERS_LIST_ID)
    subscribed = {m.email_address.lower() for m in audience.members.values()
                  if m.status == "subscribed"}  # fmt: skip
    assert len(subscribed) == c.accepted_by_destination
    assert fake.state.peak_in_flight[DEMO_API_KEY] <= 10
    assert fake.state.over_cap_refusals == 0
