"""The service wired to the real Mailchimp plugin and its fake, served over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from segport_mailchimp import Mailchimp, MailchimpSettings
from segport_mailchimp.fake import RunningFake

from service.access.auth import mint_token
from service.core import Services, open_services
from service.domain import Profile, Role
from service.plugins import Destination, hookimpl
from service.runs.embedded import in_process_runs
from service.settings import Settings
from tests.support.served import serving


def fast_mc_settings(fake: RunningFake, *, oauth_app: bool = True) -> MailchimpSettings:
    """The plugin pointed at the fake, backing off briefly (tests are not about waits);
    ``oauth_app``: with the fake's registered app (client id and secret), for OAuth2."""
    return MailchimpSettings(
        api_base_url=fake.api_base_url,
        oauth_base_url=fake.url,
        client_id=fake.state.config.client_id if oauth_app else "",
        client_secret=fake.state.config.client_secret if oauth_app else "",
        backoff_base_seconds=0.01,
        backoff_max_seconds=0.05,
    )


def fast_mc_environment(fake: RunningFake) -> dict[str, str]:
    """The same, as environment variables for a separate process."""
    return {
        **fake.environment(),
        "SEGPORT_MAILCHIMP_BACKOFF_BASE_SECONDS": "0.01",
        "SEGPORT_MAILCHIMP_BACKOFF_MAX_SECONDS": "0.05",
    }


class MailchimpPlugin:
    def __init__(self, destination: Mailchimp, *more: Mailchimp) -> None:
        self.destination = destination
        self.more = more

    @hookimpl
    def register_destinations(self) -> list[Destination]:
        return [self.destination, *self.more]


@dataclass
class Live:
    services: Services
    fake: RunningFake
    url: str
    profiles: int = 0
    """How many profiles the test's big run sends (the store decides, see the test)."""

    def token(self, role: Role, sub: str = "alice") -> str:
        return mint_token(self.services.settings, sub, [role])

    async def graphql_raw(self, query: str, role: Role = Role.ADMIN, **variables: Any) -> Any:
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.post(
                self.url,
                json={"query": query, "variables": variables},
                headers={"Authorization": f"Bearer {self.token(role)}"},
            )
        return response.json()

    async def graphql(self, query: str, role: Role = Role.ADMIN, **variables: Any) -> Any:
        body = await self.graphql_raw(query, role, **variables)
        assert "errors" not in body, body
        return body["data"]


@asynccontextmanager
async def serve_live(
    settings: Settings, fake: RunningFake, *, oauth_app: bool = True
) -> AsyncIterator[Live]:
    """The embedded service with the Mailchimp plugin pointed at ``fake``, on a free port
    (without a registered OAuth2 app unless ``oauth_app``)."""
    settings_of_fake = fast_mc_settings(fake, oauth_app=oauth_app)
    plugin = MailchimpPlugin(Mailchimp(settings_of_fake))
    async with (
        open_services(settings, extra_plugins=[plugin], load_entry_points=False) as services,
        in_process_runs(services.run_context),
        serving(services) as port,
    ):
        yield Live(services, fake, f"http://127.0.0.1:{port}/graphql")


CITY_MISSING = range(500, 10_000, 1000)
"""Profiles without a City: the audience requires CITY, Mailchimp refuses them (10)."""
FAKE_ADDRESSES = range(1, 5)
"""Profiles at a domain Mailchimp judges fake (4)."""
COMPLIANCE = range(11, 21)
"""Profiles whose address is already in the audience unsubscribed, cleaned or erased (10)."""
POINTS_INVALID = range(7, 10_000, 500)
"""Profiles whose LoyaltyPoints is not a number: sent without it, with a field warning (20)."""


def mc_profiles(count: int, segment_id: str) -> Iterator[Profile]:
    """``count`` distinct members, the special ones above, and two the run skips."""
    for i in range(count):
        domain = "throwaway.example" if i in FAKE_ADDRESSES else "shop.example"
        attributes: dict[str, Any] = {
            "EmailAddress": f"Member{i}@{domain}",
            "FirstName": f"First{i}",
            "LoyaltyPoints": "n/a" if i in POINTS_INVALID else str(i),
            "Joined": f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}",
        }
        if i not in CITY_MISSING:
            attributes["City"] = f"City{i % 50}"
        yield Profile(id=f"p{i:06d}", attributes=attributes, segment_ids=[segment_id])
    yield Profile(id="x000001", attributes={"EmailAddress": "MEMBER30@shop.example"},
                  segment_ids=[segment_id])  # fmt: skip
    yield Profile(id="x000002", attributes={"EmailAddress": "not-an-address"},
                  segment_ids=[segment_id])  # fmt: skip


def seed_compliance(fake: RunningFake, list_id: str) -> None:
    """The COMPLIANCE profiles' addresses, in the audience in states that refuse them."""
    for n, i in enumerate(COMPLIANCE):
        email = f"member{i}@shop.example"
        if n < 5:
            fake.state.set_member(list_id, email, "unsubscribed", CITY="Old")
        elif n < 8:
            fake.state.set_member(list_id, email, "cleaned", CITY="Old")
        else:
            fake.state.forget(list_id, email)
