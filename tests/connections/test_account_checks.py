"""What the connected account decides, over GraphQL against the fake Constant Contact: the
mapping targets it offers (its custom fields), the mappings it refuses, which account a
connection may be authorized into, and a destination the server has not configured."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from segport_constant_contact.fake import RunningFake

from service.api.ids import from_global_id
from service.core import Services

from .conftest import CallbackServer
from .gql_client import CREATE_CONNECTION, CREATE_EXPORT, GraphQLClient, export_input

NEWSLETTER = "8a2b3c4d-0000-4000-8000-00000000a001"

MAPPING_TARGETS = """
query($id: ID!) {
  node(id: $id) { ... on Connection { mappingTargets { name label required maxLength kind } } }
}"""

AUTHORIZE = """
mutation($id: ID!, $allow: Boolean!) {
  authorizeConnection(input: {connectionId: $id, allowAccountChange: $allow}) {
    authorizationUrl
    userErrors { field message code }
  }
}"""


async def connected(gql: GraphQLClient) -> str:
    """A connection authorized through the fake's authorize page and our callback."""
    connection_id = await gql.create_connection()
    url = await gql.authorize(connection_id)
    async with httpx.AsyncClient(follow_redirects=True) as browser:
        page = await browser.get(url)
    # Through our callback and on to the console (SEGPORT_UI_URL unset).
    assert page.url.path == "/console/", page.url
    assert page.url.params["status"] == "connected", page.url
    return connection_id


def with_mapping(base: dict[str, Any], *targets: str) -> dict[str, Any]:
    extra = [{"source": f"Attr{n}", "target": t, "allowUnknownSource": True}
             for n, t in enumerate(targets)]  # fmt: skip
    return {**base, "fieldMapping": [*base["fieldMapping"], *extra]}


async def test_the_picker_offers_the_accounts_custom_fields_and_an_export_may_use_them(
    services: Services, fake: RunningFake, callback_server: CallbackServer
) -> None:
    gql = GraphQLClient(callback_server.url, services)
    fake.state.add_custom_field("Favourite colour")
    connection_id = await connected(gql)

    node = (await gql.data(MAPPING_TARGETS, {"id": connection_id}))["node"]

    names = [t["name"] for t in node["mappingTargets"]]
    assert names[0] == "email"
    assert {"first_name", "sms_number", "anniversary"} <= set(names)
    custom = [t for t in node["mappingTargets"] if t["name"].startswith("cf:")]
    assert {t["name"] for t in custom} == {"cf:Shoe_size", "cf:Loyalty_tier", "cf:Favourite_colour"}
    assert all(t["maxLength"] == 255 and not t["required"] for t in custom)

    segment_id = await gql.segment()
    base = export_input(connection_id, segment_id, NEWSLETTER)
    created = (await gql.data(CREATE_EXPORT, {"input": with_mapping(base, "cf:Favourite_colour")}))[
        "createExport"
    ]
    assert created["userErrors"] == [], created


async def test_an_export_mapping_a_custom_field_the_account_lacks_is_refused_naming_it(
    services: Services, fake: RunningFake, callback_server: CallbackServer
) -> None:
    gql = GraphQLClient(callback_server.url, services)
    connection_id = await connected(gql)
    segment_id = await gql.segment()
    before = await gql.export_count()
    base = export_input(connection_id, segment_id, NEWSLETTER)

    payload = (
        await gql.data(CREATE_EXPORT, {"input": with_mapping(base, "cf:Shoe_size", "cf:Hat_size")})
    )["createExport"]

    assert payload["export"] is None
    [error] = payload["userErrors"]
    assert error["code"] == "UNKNOWN_CUSTOM_FIELD"
    assert error["field"] == ["fieldMapping", "3", "target"]
    assert "'Hat_size'" in error["message"]
    assert "no custom field" in error["message"]
    assert await gql.export_count() == before


async def test_re_authorizing_into_another_account_is_refused_unless_the_admin_allows_it(
    services: Services, fake: RunningFake, callback_server: CallbackServer
) -> None:
    gql = GraphQLClient(callback_server.url, services)
    connection_id = await connected(gql)
    _, raw_id = from_global_id(connection_id)
    first = await services.store.get_connection(raw_id)
    assert first is not None
    assert first.account_id == "fake0account"
    # The admin signs in to a second Constant Contact account on the fake's page.
    with fake.state.lock:
        fake.state.account.update(encoded_account_id="other0account", organization_name="Other Co")

    url = (await gql.data(AUTHORIZE, {"id": connection_id, "allow": False}))["authorizeConnection"][
        "authorizationUrl"
    ]
    async with httpx.AsyncClient(follow_redirects=True) as browser:
        refused = await browser.get(url)

    # The console is told why, in the redirect's query.
    told = refused.url.params
    assert refused.url.path == "/console/", refused.url
    assert told["error"] == "ACCOUNT_CHANGED"
    assert "different Constant Contact account (Other Co)" in told["message"]
    assert "allowAccountChange: true" in told["message"]
    unchanged = await services.store.get_connection(raw_id)
    assert unchanged is not None
    assert (unchanged.account, unchanged.account_id) == ("Fake Outfitters", "fake0account")
    assert unchanged.credentials == first.credentials

    url = (await gql.data(AUTHORIZE, {"id": connection_id, "allow": True}))["authorizeConnection"][
        "authorizationUrl"
    ]
    async with httpx.AsyncClient(follow_redirects=True) as browser:
        allowed = await browser.get(url)

    assert allowed.url.params["status"] == "connected", allowed.url
    moved = await services.store.get_connection(raw_id)
    assert moved is not None
    assert (moved.account, moved.account_id) == ("Other Co", "other0account")


async def test_re_authorizing_into_the_same_account_needs_no_confirmation(
    services: Services, fake: RunningFake, callback_server: CallbackServer
) -> None:
    gql = GraphQLClient(callback_server.url, services)
    connection_id = await connected(gql)

    url = await gql.authorize(connection_id)
    async with httpx.AsyncClient(follow_redirects=True) as browser:
        page = await browser.get(url)

    assert page.url.params["status"] == "connected", page.url
    assert "error" not in page.url.params


@pytest.mark.parametrize("flow", ["server", "pkce"])
async def test_without_a_client_id_connections_are_refused_naming_the_variable(
    services: Services,
    fake: RunningFake,
    callback_server: CallbackServer,
    monkeypatch: pytest.MonkeyPatch,
    flow: str,
) -> None:
    gql = GraphQLClient(callback_server.url, services)
    connection_id = await gql.create_connection()  # made while the plugin was configured
    monkeypatch.setenv("SEGPORT_CONSTANT_CONTACT_OAUTH_FLOW", flow)
    monkeypatch.setenv("SEGPORT_CONSTANT_CONTACT_CLIENT_ID", " ")
    before = await gql.post("{ connections { totalCount } }")

    created = (
        await gql.data(
            CREATE_CONNECTION,
            {
                "input": {
                    "destinationType": "constant_contact",
                    "displayName": "Second",
                    "acceptDataPrivacy": True,
                }
            },
        )
    )["createConnection"]
    authorized = (await gql.data(AUTHORIZE, {"id": connection_id, "allow": False}))[
        "authorizeConnection"
    ]

    assert created["connection"] is None
    [error] = created["userErrors"]
    assert (error["field"], error["code"]) == (["destinationType"], "NOT_CONFIGURED")
    assert "set SEGPORT_CONSTANT_CONTACT_CLIENT_ID" in error["message"]
    assert authorized["authorizationUrl"] is None
    [error] = authorized["userErrors"]
    assert (error["field"], error["code"]) == (["connectionId"], "NOT_CONFIGURED")
    assert "set SEGPORT_CONSTANT_CONTACT_CLIENT_ID" in error["message"]
    assert await gql.post("{ connections { totalCount } }") == before
