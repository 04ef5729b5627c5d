"""Services wired to the real Constant Contact plugin and its fake server, for run tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from segport_constant_contact import ConstantContact, ConstantContactSettings
from segport_constant_contact.fake import RunningFake

from service.connections.credentials import seal_credentials
from service.core import Services
from service.domain import Export, FieldMapping, Profile, new_id
from service.plugins import Destination, OAuthTokens, hookimpl
from tests.support.records import make_plain_connection, make_plain_export, make_segment

NEWSLETTER_LIST = "8a2b3c4d-0000-4000-8000-00000000a001"


def fast_cc_settings(fake: RunningFake) -> ConstantContactSettings:
    """The plugin pointed at the fake, polling activities quickly (tests are not about waits)."""
    return ConstantContactSettings(
        client_id=fake.state.config.client_id,
        client_secret=fake.state.config.client_secret,
        api_base_url=fake.api_base_url,
        auth_base_url=fake.auth_base_url,
        backoff_base_seconds=0.05,
        backoff_max_seconds=0.2,
        confirm_initial_interval_seconds=0.05,
        confirm_max_interval_seconds=0.2,
        queued_activities_wait_seconds=0.05,
    )


def fast_cc_environment(fake: RunningFake) -> dict[str, str]:
    """The same, as environment variables for a separate process."""
    return {
        **fake.environment(),
        "SEGPORT_CONSTANT_CONTACT_BACKOFF_BASE_SECONDS": "0.05",
        "SEGPORT_CONSTANT_CONTACT_BACKOFF_MAX_SECONDS": "0.2",
        "SEGPORT_CONSTANT_CONTACT_CONFIRM_INITIAL_INTERVAL_SECONDS": "0.05",
        "SEGPORT_CONSTANT_CONTACT_CONFIRM_MAX_INTERVAL_SECONDS": "0.2",
        "SEGPORT_CONSTANT_CONTACT_QUEUED_ACTIVITIES_WAIT_SECONDS": "0.05",
    }


class ConstantContactPlugin:
    def __init__(self, destination: ConstantContact) -> None:
        self.destination = destination

    @hookimpl
    def register_destinations(self) -> list[Destination]:
        return [self.destination]


MAPPING = [
    FieldMapping(source="EmailAddress", target="email"),
    FieldMapping(source="FirstName", target="first_name"),
    FieldMapping(source="LastName", target="last_name"),
]


def cc_profiles(valid: int) -> list[Profile]:
    """``valid`` distinct contacts plus a few invalid and duplicate ones (ids sort after)."""
    profiles = [
        Profile(
            id=f"p{i:06d}",
            attributes={
                "EmailAddress": f"Contact{i}@Example.com",
                "FirstName": f"First{i}",
                "LastName": f"Last{i}",
            },
        )
        for i in range(valid)
    ]
    profiles += [
        Profile(id="x000001", attributes={"EmailAddress": "contact3@example.com"}),  # duplicate
        Profile(id="x000002", attributes={"EmailAddress": "no-at-sign.example.com"}),
        Profile(id="x000003", attributes={"FirstName": "Nomail"}),
    ]
    return profiles


async def seed_cc_export(
    services: Services, fake: RunningFake, profiles: Sequence[Profile], **export: Any
) -> Export:
    """A connected Constant Contact connection (tokens the fake issued), a segment holding
    ``profiles`` and an export of it to the Newsletter list (``export``: fields to change)."""
    answer = fake.state.issue_tokens()
    sealed = seal_credentials(
        services.cipher,
        tokens=OAuthTokens(
            access_token=answer["access_token"],
            refresh_token=answer.get("refresh_token"),
            scope=answer.get("scope"),
        ),
    )
    connection = make_plain_connection(
        "constant_contact", "Marketing CC", credentials=sealed, account="Fake Outfitters"
    )
    await services.store.save_connection(connection)
    segment = make_segment(name=f"Buyers {new_id()}", description=None)
    await services.store.save_segment(segment)
    for profile in profiles:
        profile.segment_ids = [segment.id]
    await services.store.upsert_profiles(list(profiles))
    record = make_plain_export(
        connection,
        [segment.id],
        list(MAPPING),
        display_name="Buyers to newsletter",
        settings={"listId": NEWSLETTER_LIST},
        created_by="admin",
    )
    record = replace(record, **export)
    await services.store.save_export(record)
    return record


def expected_emails(valid: int) -> set[str]:
    return {f"contact{i}@example.com" for i in range(valid)}
