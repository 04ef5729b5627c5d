"""Following imports: one request per round for every open activity, so a run makes few
requests; imports that end badly are sent again, then fail with exact counts; progress."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from cc_support import GENERAL_LIST, fake_context, instant_limiter
from segport_constant_contact import ConstantContact, ConstantContactSettings
from segport_constant_contact.errors import ImportFailed
from segport_constant_contact.fake import RunningFake

from service.plugins import Confirmation, DestinationSession, UploadBatch
from service.plugins.testing import RecordingReporter, batch_of

IMPORTS = 25
"""A 1,000,000-profile run: 25 imports of 40,000 contacts."""


def batch(destination: ConstantContact, start: int, size: int = 20) -> UploadBatch:
    contacts = [{"email": f"p{i}@example.com"} for i in range(start, start + size)]
    return batch_of(destination, contacts, {"listId": GENERAL_LIST})


async def run_like_the_service(
    session: DestinationSession, batches: list[UploadBatch]
) -> list[Confirmation]:
    """Upload one batch after the other and confirm each as soon as it is sent, at most
    four confirmations waiting at once, as the service's committer does."""
    slots = asyncio.Semaphore(4)

    async def confirm(receipt: str) -> Confirmation:
        async with slots:
            return await session.confirm(receipt)

    confirming = []
    for each in batches:
        outcome = await session.upload(each)
        assert outcome.receipt
        confirming.append(asyncio.create_task(confirm(outcome.receipt)))
    return list(await asyncio.gather(*confirming))


@pytest.fixture
def real_time_destination(settings: ConstantContactSettings) -> ConstantContact:
    """Polling intervals as a run has them, scaled down (the rounds are timed in real time)."""
    return ConstantContact(
        settings.model_copy(
            update={"confirm_initial_interval_seconds": 0.05, "confirm_max_interval_seconds": 2.0}
        )
    )


async def test_a_million_profile_run_makes_at_most_32_requests(
    real_time_destination: ConstantContact, fake: RunningFake, http: httpx.AsyncClient
) -> None:
    destination = real_time_destination
    fake.state.configure(requests_per_second=10_000, polls_to_complete=3)
    ctx = fake_context(fake, destination, http, limiter=instant_limiter(destination))
    ctx.sleep = asyncio.sleep  # the rounds are timed in real time
    await destination.check_export_settings(ctx, {"listId": GENERAL_LIST})
    await destination.check_mapping(ctx, ["email", "cf:Shoe_size"])
    session = destination.open_session(ctx)
    done = await run_like_the_service(session, [batch(destination, 20 * i) for i in range(IMPORTS)])
    await session.aclose()

    assert sum(c.accepted for c in done) == 20 * IMPORTS
    assert len(fake.state.list_members(GENERAL_LIST)) == 20 * IMPORTS
    log = fake.state.request_log
    imports = [r for r in log if r.path == "/v3/activities/contacts_json_import"]
    status_reads = [r for r in log if r.path.startswith("/v3/activities") and r.method == "GET"]
    assert len(imports) == IMPORTS
    assert len(status_reads) <= 4, [r.path for r in status_reads]
    assert len(log) <= 32


async def test_an_import_that_fails_is_sent_again_and_counted_once(
    destination: ConstantContact, fake: RunningFake, http: httpx.AsyncClient
) -> None:
    fake.state.configure(requests_per_second=10_000, ending_states=["failed", "timed_out"])
    ctx = fake_context(fake, destination, http, limiter=instant_limiter(destination))
    session = destination.open_session(ctx)
    outcome = await session.upload(batch(destination, 0, 5))
    assert outcome.receipt
    confirmation = await session.confirm(outcome.receipt)
    await session.aclose()
    assert (confirmation.accepted, confirmation.rejected, confirmation.cannot_add_to_list) == (
        5,
        0,
        0,
    )
    assert fake.state.requests_to("POST", "/v3/activities/contacts_json_import") == 3
    assert any("was sent 3 times: ended failed" in s and "ended timed_out" in s
               for s in confirmation.error_samples)  # fmt: skip
    assert len(fake.state.list_members(GENERAL_LIST)) == 5


async def test_an_import_is_sent_again_byte_for_byte(
    destination: ConstantContact, fake: RunningFake
) -> None:
    """The body is kept compressed while its import is open; what goes again is exactly
    what went first."""
    fake.state.configure(requests_per_second=10_000, ending_states=["failed", "cancelled"])
    bodies: list[bytes] = []

    async def record(request: httpx.Request) -> None:
        if request.url.path.endswith("/contacts_json_import"):
            bodies.append(request.content)

    async with httpx.AsyncClient(event_hooks={"request": [record]}) as http:
        ctx = fake_context(fake, destination, http, limiter=instant_limiter(destination))
        session = destination.open_session(ctx)
        outcome = await session.upload(batch(destination, 0, 300))
        assert outcome.receipt
        confirmation = await session.confirm(outcome.receipt)
        await session.aclose()
    assert confirmation.accepted == 300
    assert len(bodies) == 3
    assert bodies[1] == bodies[0]
    assert bodies[2] == bodies[0]
    assert len(fake.state.list_members(GENERAL_LIST)) == 300


@pytest.mark.parametrize("state", ["failed", "cancelled", "timed_out"])
async def test_an_import_that_keeps_ending_badly_fails_with_exact_counts_and_its_words(
    destination: ConstantContact, fake: RunningFake, http: httpx.AsyncClient, state: str
) -> None:
    fake.state.configure(requests_per_second=10_000, ending_states=[state] * 3)
    ctx = fake_context(fake, destination, http, limiter=instant_limiter(destination))
    session = destination.open_session(ctx)
    outcome = await session.upload(batch(destination, 0, 7))
    assert outcome.receipt
    with pytest.raises(ImportFailed) as caught:
        await session.confirm(outcome.receipt)
    await session.aclose()
    failure = caught.value
    words = f"The import {state.replace('_', ' ')} before it completed"
    assert str(failure).startswith(
        f"Constant Contact import {outcome.receipt} of 7 contacts did not complete after 3 attempts"
    )
    assert words in str(failure)
    done = failure.confirmation
    assert done.accepted + done.rejected + done.cannot_add_to_list == 7
    assert fake.state.requests_to("POST", "/v3/activities/contacts_json_import") == 3


async def test_progress_is_shown_while_constant_contact_processes(
    destination: ConstantContact, fake: RunningFake, http: httpx.AsyncClient
) -> None:
    fake.state.configure(requests_per_second=10_000, polls_to_complete=4)
    reporter = RecordingReporter()
    ctx = fake_context(fake, destination, http, limiter=instant_limiter(destination),
                       reporter=reporter)  # fmt: skip
    session = destination.open_session(ctx)
    outcome = await session.upload(batch(destination, 0, 8))
    assert outcome.receipt
    await session.confirm(outcome.receipt)
    await session.aclose()
    assert reporter.progress == [(2, 8), (4, 8), (6, 8)]
    assert reporter.waits == []


async def test_a_resumed_run_confirms_an_import_it_did_not_send(
    destination: ConstantContact, fake: RunningFake, http: httpx.AsyncClient
) -> None:
    fake.state.configure(requests_per_second=10_000)
    ctx = fake_context(fake, destination, http, limiter=instant_limiter(destination))
    first = destination.open_session(ctx)
    outcome = await first.upload(batch(destination, 0, 6))
    await first.aclose()  # the job stopped before confirming
    assert outcome.receipt
    second = destination.open_session(ctx)
    confirmation = await second.confirm(outcome.receipt)
    await second.aclose()
    assert (confirmation.accepted, confirmation.rejected) == (6, 0)
