"""The testing kit's shared conformance suite, run against every destination we ship: the
toy webhook collector, Constant Contact and Mailchimp, each against its own server over
real HTTP. What the suite checks is in :mod:`service.plugins.conformance`."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import httpx
import pytest
from segport_constant_contact import ConstantContact, ConstantContactSettings
from segport_constant_contact.fake import GENERAL_INTEREST_LIST_ID
from segport_constant_contact.fake import run_fake as run_cc_fake
from segport_mailchimp import Mailchimp, MailchimpSettings
from segport_mailchimp.fake import DEMO_API_KEY, NEWSLETTER_LIST_ID
from segport_mailchimp.fake import run_fake as run_mc_fake
from segport_toy_destination.destination import WebhookCollector

from service.plugins import (
    AuthKind,
    Destination,
    DestinationContext,
    DestinationLimits,
    DestinationSession,
    OAuthTokens,
    Rejection,
    SettingSpec,
)
from service.plugins.conformance import (
    ConformanceCase,
    conformance_problems,
    declaration_problems,
)
from service.plugins.testing import (
    InMemoryCredentials,
    InMemoryRateLimiter,
    VirtualClock,
    discover_destinations,
    make_context,
)
from tests.plugins.toy_context import ContextFactory

EMAILS = [f"Reader{n}@Example.com" for n in range(12)]
CaseMaker = Callable[[httpx.AsyncClient], ConformanceCase]


def _limiter(limits: DestinationLimits) -> InMemoryRateLimiter:
    clock = VirtualClock()
    return InMemoryRateLimiter(limits, clock=clock, sleep=clock.sleep)


@pytest.fixture
def toy_case(toy: WebhookCollector, toy_context: ContextFactory) -> CaseMaker:
    def make(http: httpx.AsyncClient) -> ConformanceCase:
        return ConformanceCase(
            destination=toy,
            context=lambda: toy_context(endpoint="conformance"),
            valid_values=[{"email": e, "name": f"Reader {n}"} for n, e in enumerate(EMAILS)],
            invalid_values=[{"email": "not-an-address"}, {"name": "No mail"}],
            export_settings={"endpoint": "conformance"},
        )

    return make


@pytest.fixture
def cc_case() -> Iterator[CaseMaker]:
    with run_cc_fake(seed=29, requests_per_second=10_000) as fake:
        destination = ConstantContact(
            ConstantContactSettings(
                client_id=fake.state.config.client_id,
                client_secret=fake.state.config.client_secret,
                api_base_url=fake.api_base_url,
                auth_base_url=fake.auth_base_url,
                confirm_initial_interval_seconds=0.01,
                confirm_max_interval_seconds=0.05,
            )
        )
        settings = {"listId": GENERAL_INTEREST_LIST_ID}

        def make(http: httpx.AsyncClient) -> ConformanceCase:
            def context() -> DestinationContext:
                answer = fake.state.issue_tokens()
                tokens = OAuthTokens(answer["access_token"], answer.get("refresh_token"))
                return make_context(
                    destination,
                    http,
                    tokens=tokens,
                    rate_limiter=_limiter(destination.limits),
                    export_settings=settings,
                )

            return ConformanceCase(
                destination=destination,
                context=context,
                valid_values=[{"email": e, "first_name": f"R{n}"} for n, e in enumerate(EMAILS)],
                invalid_values=[{"email": "not-an-address"}, {"first_name": "No mail"}],
                export_settings=settings,
            )

        yield make


@pytest.fixture
def mc_case() -> Iterator[CaseMaker]:
    with run_mc_fake(seed=31, latency_seconds=0.01) as fake:
        destination = Mailchimp(MailchimpSettings(api_base_url=fake.api_base_url))
        settings = {"listId": NEWSLETTER_LIST_ID, "statusIfNew": "subscribed"}

        def make(http: httpx.AsyncClient) -> ConformanceCase:
            return ConformanceCase(
                destination=destination,
                context=lambda: make_context(
                    destination,
                    http,
                    credentials=InMemoryCredentials(secrets={"apiKey": DEMO_API_KEY}),
                    rate_limiter=InMemoryRateLimiter(destination.limits),
                    export_settings=settings,
                ),
                valid_values=[{"email_address": e, "FNAME": f"R{n}"} for n, e in enumerate(EMAILS)],
                invalid_values=[{"email_address": "not-an-address"}, {"FNAME": "No mail"}],
                export_settings=settings,
            )

        yield make


@pytest.mark.parametrize("case", ["toy_case", "cc_case", "mc_case"])
async def test_every_shipped_destination_passes_the_conformance_suite(
    case: str, request: pytest.FixtureRequest, http_client: httpx.AsyncClient
) -> None:
    make: CaseMaker = request.getfixturevalue(case)
    assert await conformance_problems(make(http_client)) == []


async def test_mailchimp_by_oauth_passes_the_conformance_suite(
    http_client: httpx.AsyncClient,
) -> None:
    """Mailchimp's second way to connect, with a token from the fake's OAuth2 flow."""
    with run_mc_fake(seed=37, latency_seconds=0.01) as fake:
        destination = Mailchimp(
            MailchimpSettings(
                api_base_url=fake.api_base_url,
                oauth_base_url=fake.url,
                client_id=fake.state.config.client_id,
                client_secret=fake.state.config.client_secret,
            )
        )
        redirect = "http://127.0.0.1:8000/oauth/callback"
        url = destination.authorization_url(
            state="s", code_challenge="unused", redirect_uri=redirect, settings={}
        )
        code = httpx.URL((await http_client.get(url)).headers["location"]).params["code"]
        tokens = await destination.exchange_code(
            make_context(destination, http_client, auth_kind="oauth2"),
            code=code,
            code_verifier="unused",
            redirect_uri=redirect,
        )
        settings = {"listId": NEWSLETTER_LIST_ID, "statusIfNew": "subscribed"}
        case = ConformanceCase(
            destination=destination,
            context=lambda: make_context(
                destination,
                http_client,
                tokens=tokens,
                rate_limiter=InMemoryRateLimiter(destination.limits),
                export_settings=settings,
                auth_kind="oauth2",
            ),
            valid_values=[{"email_address": e} for e in EMAILS],
            invalid_values=[{"email_address": "not-an-address"}],
            export_settings=settings,
        )
        assert await conformance_problems(case) == []


def test_every_installed_destination_declares_what_the_service_can_enforce() -> None:
    installed = discover_destinations()
    assert {"constant_contact", "mailchimp", "toy_webhook"} <= set(installed)
    assert {key: declaration_problems(d) for key, d in installed.items()} == {
        key: [] for key in installed
    }


def test_the_suite_names_what_a_broken_destination_gets_wrong(toy: WebhookCollector) -> None:
    class Broken(WebhookCollector):
        key = "Broken Key"
        auth_kind = "api_key"
        connection_settings: Sequence[SettingSpec] = ()  # type: ignore[assignment]

    problems = declaration_problems(Broken("http://127.0.0.1:9"))
    assert "key 'Broken Key' is not a lower-case identifier" in problems
    assert "an api_key destination declares no secret connection setting" in problems


class Declared(Destination):
    """Only declarations, for the declaration checks."""

    key = "declared"
    display_name = "Declared"
    connection_settings: Sequence[SettingSpec] = (
        SettingSpec("apiKey", "API key", required=True, secret=True),
    )

    def build_record(self, values: Mapping[str, Any]) -> dict[str, Any] | Rejection:
        return dict(values)

    def open_session(self, ctx: DestinationContext) -> DestinationSession:
        raise NotImplementedError


def test_the_suite_names_what_a_destination_gets_wrong_about_its_ways_to_connect() -> None:
    class Twice(Declared):
        auth_kinds = ("api_key", "api_key", "password")  # type: ignore[assignment]

    class NotFirst(Declared):
        auth_kinds: tuple[AuthKind, ...] = ("api_key", "oauth2")
        auth_kind: AuthKind = "oauth2"

    class KeyWithoutSecret(Declared):
        auth_kinds: tuple[AuthKind, ...] = ("oauth2", "api_key")

        def connection_settings_for(self, auth_kind: AuthKind) -> Sequence[SettingSpec]:
            return ()

    twice = declaration_problems(Twice())
    assert "auth_kind 'password' is not one of oauth2, api_key, none" in twice
    assert "auth_kinds names one way to connect twice: ['api_key', 'api_key', 'password']" in (
        twice
    )
    assert declaration_problems(NotFirst()) == [
        "auth_kind 'oauth2' is not the first of auth_kinds ['api_key', 'oauth2'] (the way a "
        "connection that does not say connects)"
    ]
    assert "an api_key destination declares no secret connection setting" in (
        declaration_problems(KeyWithoutSecret())
    )


def test_a_class_that_sets_one_of_auth_kind_and_auth_kinds_gets_the_other() -> None:
    class Legacy(Declared):
        auth_kind: AuthKind = "none"

    class Several(Declared):
        auth_kinds: tuple[AuthKind, ...] = ("oauth2", "api_key")

    assert Declared.auth_kinds == ("none",)
    assert Legacy.auth_kinds == ("none",)
    assert (Several.auth_kind, Several.auth_kinds) == ("oauth2", ("oauth2", "api_key"))
    assert WebhookCollector.auth_kinds == ("api_key",)
