"""Destinations with more than one way to connect (plugin API 1.3), through the API: the
kinds a destination type offers and whether each is configured, createConnection's
``authKind`` (the first kind by default, an unoffered one named), the settings asked per
kind, ``Connection.authKind``, and connections stored before kinds were recorded, which
connect their destination's first way. The destination is a small two-way plugin of this
module; Mailchimp's two ways are tested end to end in tests/mailchimp."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import httpx
import pytest

from service import domain
from service.api.ids import to_global_id
from service.app import create_app
from service.core import open_services
from service.plugins import (
    AuthKind,
    Destination,
    DestinationContext,
    DestinationSession,
    InvalidCredentials,
    Rejection,
    SettingSpec,
    hookimpl,
)
from tests.api import destination_fixture
from tests.api.conftest import ApiClient
from tests.support.settings import make_settings

GOOD_TOKEN = "good-token"
NOT_CONFIGURED = "two ways: OAuth2 is not configured: set SEGPORT_TWO_WAYS_CLIENT_ID"


class TwoWays(Destination):
    """An API token (checked when saved) or, when the server has an app, OAuth2."""

    key = "two_ways"
    display_name = "Two ways"
    auth_kinds: tuple[AuthKind, ...] = ("api_key", "oauth2")
    connection_settings: Sequence[SettingSpec] = (
        SettingSpec("apiToken", "API token", required=True, secret=True),
    )

    def __init__(self) -> None:
        self.oauth_configured = True

    def connection_settings_for(self, auth_kind: AuthKind) -> Sequence[SettingSpec]:
        return self.connection_settings if auth_kind == "api_key" else ()

    def configuration_problem_for(self, auth_kind: AuthKind) -> str | None:
        if auth_kind == "oauth2" and not self.oauth_configured:
            return NOT_CONFIGURED
        return None

    def authorization_url(
        self, *, state: str, code_challenge: str, redirect_uri: str, settings: Mapping[str, Any]
    ) -> str:
        return f"https://two-ways.example/authorize?state={state}"

    async def verify_connection(self, ctx: DestinationContext) -> str | None:
        assert ctx.auth_kind == "api_key"  # OAuth2 connections are verified once authorized
        if (await ctx.credentials.secrets()).get("apiToken") != GOOD_TOKEN:
            raise InvalidCredentials("Two ways: token refused")
        return "Two ways account"

    def build_record(self, values: Mapping[str, Any]) -> dict[str, Any] | Rejection:
        return dict(values)

    def open_session(self, ctx: DestinationContext) -> DestinationSession:
        raise NotImplementedError("the API tests never run exports")


class TwoWaysPlugin:
    def __init__(self) -> None:
        self.destination = TwoWays()

    @hookimpl
    def register_destinations(self) -> list[Destination]:
        return [self.destination]


@pytest.fixture
def two_ways() -> TwoWaysPlugin:
    return TwoWaysPlugin()


@pytest.fixture
async def api(sqlite_url: str, two_ways: TwoWaysPlugin) -> AsyncIterator[ApiClient]:
    async with open_services(
        make_settings(sqlite_url),
        extra_plugins=[destination_fixture, two_ways],
        load_entry_points=False,
    ) as services:
        transport = httpx.ASGITransport(app=create_app(services))
        async with httpx.AsyncClient(transport=transport, base_url="http://segport.test") as http:
            yield ApiClient(http=http, services=services)


CREATE = """
mutation($input: CreateConnectionInput!) {
  createConnection(input: $input) {
    connection { id status authKind account }
    userErrors { field message code }
  }
}"""

TYPES = """
{ destinationTypes { key authKind authKinds { kind configured configurationProblem
    connectionSettings { name required secret } } } }"""

AUTHORIZE = """
mutation($input: AuthorizeConnectionInput!) {
  authorizeConnection(input: $input) { authorizationUrl userErrors { field message code } }
}"""

REPLACE = """
mutation($input: ReplaceConnectionSecretsInput!) {
  replaceConnectionSecrets(input: $input) {
    connection { status authKind }
    userErrors { field message code }
  }
}"""

NODE = "query($id: ID!) { node(id: $id) { ... on Connection { authKind status } } }"


async def create(api: ApiClient, **fields: Any) -> dict[str, Any]:
    data = await api.data(
        CREATE,
        {"input": {"displayName": "Connection", "acceptDataPrivacy": True, **fields}},
    )
    return dict(data["createConnection"])


async def test_a_type_lists_its_ways_to_connect_and_whether_each_is_configured(
    api: ApiClient, two_ways: TwoWaysPlugin
) -> None:
    two_ways.destination.oauth_configured = False
    types = {t["key"]: t for t in (await api.data(TYPES))["destinationTypes"]}
    assert types["two_ways"]["authKind"] == "api_key"
    assert types["two_ways"]["authKinds"] == [
        {
            "kind": "API_KEY",
            "configured": True,
            "configurationProblem": None,
            "connectionSettings": [{"name": "apiToken", "required": True, "secret": True}],
        },
        {
            "kind": "OAUTH2",
            "configured": False,
            "configurationProblem": NOT_CONFIGURED,
            "connectionSettings": [],
        },
    ]
    # A destination written for plugin API 1.0-1.2 offers its one auth_kind.
    [only] = types[destination_fixture.KEY]["authKinds"]
    assert (only["kind"], only["configured"]) == ("NONE", True)
    assert [s["name"] for s in only["connectionSettings"]] == ["apiToken", "region"]


async def test_the_first_way_is_the_default_and_the_others_are_chosen_by_name(
    api: ApiClient,
) -> None:
    by_key = await create(api, destinationType="two_ways", settings={"apiToken": GOOD_TOKEN})
    assert by_key["userErrors"] == []
    assert by_key["connection"]["authKind"] == "API_KEY"
    assert by_key["connection"]["status"] == "CONNECTED"
    assert by_key["connection"]["account"] == "Two ways account"

    by_oauth = await create(api, destinationType="two_ways", authKind="OAUTH2")
    assert by_oauth["userErrors"] == []
    assert by_oauth["connection"]["authKind"] == "OAUTH2"
    assert by_oauth["connection"]["status"] == "PENDING_AUTHORIZATION"
    started = await api.data(AUTHORIZE, {"input": {"connectionId": by_oauth["connection"]["id"]}})
    assert started["authorizeConnection"]["userErrors"] == []
    assert started["authorizeConnection"]["authorizationUrl"].startswith(
        "https://two-ways.example/authorize?state="
    )
    # The API-key connection of the same destination does not authorize with OAuth.
    refused = await api.data(AUTHORIZE, {"input": {"connectionId": by_key["connection"]["id"]}})
    assert refused["authorizeConnection"]["userErrors"][0]["code"] == "NOT_OAUTH"

    stored = {c.auth_kind for c in (await api.services.store.list_connections(10)).items}
    assert stored == {"api_key", "oauth2"}


async def test_each_way_asks_for_its_own_settings(api: ApiClient) -> None:
    missing = await create(api, destinationType="two_ways", authKind="API_KEY")
    [error] = missing["userErrors"]
    assert (error["field"], error["code"]) == (["settings", "apiToken"], "REQUIRED")
    refused = await create(api, destinationType="two_ways", settings={"apiToken": "bad"})
    assert refused["userErrors"][0]["code"] == "INVALID_CREDENTIALS"
    extra = await create(
        api, destinationType="two_ways", authKind="OAUTH2", settings={"apiToken": GOOD_TOKEN}
    )
    [unknown] = extra["userErrors"]
    assert (unknown["field"], unknown["code"]) == (["settings", "apiToken"], "UNKNOWN")
    assert GOOD_TOKEN not in str(extra)


async def test_a_way_the_destination_does_not_offer_is_a_user_error_naming_it(
    api: ApiClient,
) -> None:
    payload = await create(api, destinationType="two_ways", authKind="NONE")
    assert payload["connection"] is None
    [error] = payload["userErrors"]
    assert (error["field"], error["code"]) == (["authKind"], "UNSUPPORTED_AUTH_KIND")
    assert error["message"] == (
        "Two ways does not connect by NONE (its ways to connect: API_KEY, OAUTH2)"
    )
    legacy = await create(api, destinationType=destination_fixture.KEY, authKind="OAUTH2")
    assert legacy["userErrors"][0]["code"] == "UNSUPPORTED_AUTH_KIND"
    assert "its ways to connect: NONE" in legacy["userErrors"][0]["message"]
    # Errors of other fields are reported beside it.
    both = await create(api, destinationType="two_ways", authKind="NONE", acceptDataPrivacy=False)
    codes = {e["code"] for e in both["userErrors"]}
    assert codes == {"UNSUPPORTED_AUTH_KIND", "DATA_PRIVACY_NOT_ACCEPTED"}


async def test_an_unconfigured_way_is_refused_by_name_while_the_other_works(
    api: ApiClient, two_ways: TwoWaysPlugin
) -> None:
    by_oauth = await create(api, destinationType="two_ways", authKind="OAUTH2")
    two_ways.destination.oauth_configured = False
    payload = await create(api, destinationType="two_ways", authKind="OAUTH2")
    assert payload["connection"] is None
    [error] = payload["userErrors"]
    assert (error["field"], error["code"], error["message"]) == (
        ["authKind"],
        "NOT_CONFIGURED",
        NOT_CONFIGURED,
    )
    started = await api.data(AUTHORIZE, {"input": {"connectionId": by_oauth["connection"]["id"]}})
    [refused] = started["authorizeConnection"]["userErrors"]
    assert (refused["code"], refused["message"]) == ("NOT_CONFIGURED", NOT_CONFIGURED)
    by_key = await create(api, destinationType="two_ways", settings={"apiToken": GOOD_TOKEN})
    assert by_key["userErrors"] == []


async def test_a_connection_stored_without_a_kind_connects_the_first_way(
    api: ApiClient,
) -> None:
    now = domain.utcnow()
    older = domain.Connection(
        id=domain.new_id(),
        display_name="Made before ways to connect were recorded",
        destination_type="two_ways",
        usable_by=domain.ConnectionUsableBy.ADMINS,
        status=domain.ConnectionStatus.NEEDS_REAUTHORIZATION,
        created_by="admin-user",
        created_at=now,
        updated_at=now,
    )
    await api.services.store.save_connection(older)
    stored = await api.services.store.get_connection(older.id)
    assert stored is not None
    assert stored.auth_kind is None
    global_id = to_global_id("Connection", older.id)
    node = (await api.data(NODE, {"id": global_id}))["node"]
    assert node["authKind"] == "API_KEY"
    # Its key is replaced as an API-key connection's is.
    replaced = await api.data(
        REPLACE, {"input": {"connectionId": global_id, "settings": {"apiToken": GOOD_TOKEN}}}
    )
    assert replaced["replaceConnectionSecrets"]["userErrors"] == []
    assert replaced["replaceConnectionSecrets"]["connection"] == {
        "status": "CONNECTED",
        "authKind": "API_KEY",
    }


async def test_contributors_see_how_a_shared_connection_connects_not_its_details(
    api: ApiClient,
) -> None:
    shared = await create(
        api,
        destinationType="two_ways",
        authKind="OAUTH2",
        usableBy="ADMINS_AND_CONTRIBUTORS",
    )
    node = (await api.data(NODE, {"id": shared["connection"]["id"]}, role="contributor"))["node"]
    assert node == {"authKind": "OAUTH2", "status": None}
