"""Mailchimp end to end, on both stores, over real HTTP (GraphQL to segport, segport to the
fake Mailchimp): an admin connects with an API key or by OAuth2 (one destination, two ways
to connect), a contributor picks an audience and maps merge fields, and a run of 10,000
profiles lands every valid member with its fields, counting per-member errors and
compliance states exactly."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from segport_mailchimp.fake import (
    CUSTOMERS_LIST_ID,
    DEMO_API_KEY,
    NEWSLETTER_LIST_ID,
    RunningFake,
    run_fake,
)

from service.api.ids import to_global_id
from service.domain import Role
from service.runs import client
from tests.mailchimp.mc_world import (
    CITY_MISSING,
    COMPLIANCE,
    FAKE_ADDRESSES,
    POINTS_INVALID,
    Live,
    mc_profiles,
    seed_compliance,
    serve_live,
)
from tests.support.records import make_segment
from tests.support.settings import make_settings

CREATE_CONNECTION = """
mutation($input: CreateConnectionInput!) {
  createConnection(input: $input) {
    connection { id status account statusMessage authKind }
    userErrors { field message code }
  }
}"""

REPLACE_SECRETS = """
mutation($input: ReplaceConnectionSecretsInput!) {
  replaceConnectionSecrets(input: $input) {
    connection { id status account statusMessage }
    userErrors { field message code }
  }
}"""

CHOICES = """
query($connectionId: ID!) {
  exportSettingChoices(connectionId: $connectionId, setting: "listId") { id name }
}"""

CREATE_EXPORT = """
mutation($input: CreateExportInput!) {
  createExport(input: $input) {
    export { id }
    userErrors { field message code }
  }
}"""

CONNECTION = """
query($id: ID!) { node(id: $id) { ... on Connection { status statusMessage authKind } } }"""

MAPPING = [
    {"source": "EmailAddress", "target": "email_address"},
    {"source": "FirstName", "target": "FNAME"},
    {"source": "City", "target": "CITY"},
    {"source": "LoyaltyPoints", "target": "POINTS"},
    {"source": "Joined", "target": "JOINED"},
]


@pytest.fixture
def fake() -> Iterator[RunningFake]:
    with run_fake(seed=17) as running:
        yield running


PROFILES = {"sqlite": 10_000, "mongo": 600}
"""Profiles of the big run on each store. The MongoDB wire server the tests use (mongoeco)
writes upserts in time that grows with the collection (10,000 take minutes, 1,000 about
2.5 s, and a run writes its ledger too), so the MongoDB run is smaller; the pipeline's
code is the same for both."""


def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The database of the store the fixture is parametrized with."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'mc.db'}"
    return str(request.getfixturevalue("mongo_database_url"))


@pytest.fixture(params=["sqlite", "mongo"])
async def live(
    request: pytest.FixtureRequest, tmp_path: Path, fake: RunningFake
) -> AsyncIterator[Live]:
    database_url = store_url(request, tmp_path)
    settings = make_settings(database_url, run_read_batch_size=1000)
    async with serve_live(settings, fake) as running:
        running.profiles = PROFILES[request.param]
        yield running


@pytest.fixture(params=["sqlite", "mongo"])
async def live_without_app(
    request: pytest.FixtureRequest, tmp_path: Path, fake: RunningFake
) -> AsyncIterator[Live]:
    """As ``live``, but no OAuth2 app is registered (no SEGPORT_MAILCHIMP_CLIENT_ID)."""
    database_url = store_url(request, tmp_path)
    async with serve_live(make_settings(database_url), fake, oauth_app=False) as running:
        yield running


async def create_connection(live: Live, fields: dict[str, Any]) -> dict[str, Any]:
    """``createConnection`` of a Mailchimp connection with ``fields``, the privacy terms
    accepted; the whole answer."""
    input_ = {"destinationType": "mailchimp", "acceptDataPrivacy": True, **fields}
    return dict(await live.graphql(CREATE_CONNECTION, input=input_))


async def connect(live: Live, api_key: str) -> dict[str, Any]:
    data = await create_connection(
        live,
        {
            "displayName": "Marketing Mailchimp",
            "usableBy": "ADMINS_AND_CONTRIBUTORS",
            "settings": {"apiKey": api_key},
        },
    )
    return dict(data["createConnection"])


async def run_to_its_end(live: Live, token: str, export_id: str) -> list[dict[str, Any]]:
    """Runs the export and follows the run over the API; every state it went through."""
    run = await client.request_run(live.url, token, export_id)
    return [state async for state in client.follow_run(live.url, token, run["id"])]


async def create_export(live: Live, connection_id: str, segment_id: str) -> str:
    data = await live.graphql(
        CREATE_EXPORT,
        Role.CONTRIBUTOR,
        input={
            "displayName": "Customers to Mailchimp",
            "connectionId": connection_id,
            "settings": {"listId": CUSTOMERS_LIST_ID, "statusIfNew": "subscribed"},
            "fieldMapping": MAPPING,
            "segmentIds": [to_global_id("Segment", segment_id)],
        },
    )
    payload = data["createExport"]
    assert payload["userErrors"] == []
    return str(payload["export"]["id"])


async def test_a_bad_key_is_refused_in_mailchimps_words_and_never_echoed(live: Live) -> None:
    wrong = "0123456789abcdef0123456789abcdef-us6"
    payload = await connect(live, wrong)
    assert payload["connection"] is None
    [error] = payload["userErrors"]
    assert error["code"] == "INVALID_CREDENTIALS"
    assert "API Key Invalid" in error["message"]
    assert wrong not in str(payload)
    malformed = await connect(live, "not-a-key")
    assert malformed["userErrors"][0]["code"] == "INVALID"
    assert "not-a-key" not in str(malformed)


async def test_ten_thousand_profiles_land_with_their_fields_and_exact_counts(live: Live) -> None:
    count = live.profiles
    payload = await connect(live, DEMO_API_KEY)
    assert payload["userErrors"] == []
    connection = payload["connection"]
    assert (connection["status"], connection["account"]) == ("CONNECTED", "Fake Mailchimp Co.")

    choices = await live.graphql(CHOICES, Role.CONTRIBUTOR, connectionId=connection["id"])
    assert {"id": CUSTOMERS_LIST_ID, "name": "Customers"} in choices["exportSettingChoices"]

    segment = make_segment(name="Customers", description=None)
    await live.services.store.save_segment(segment)
    await live.services.store.upsert_profiles(list(mc_profiles(count, segment.id)))
    seed_compliance(live.fake, CUSTOMERS_LIST_ID)
    export_id = await create_export(live, connection["id"], segment.id)

    token = live.token(Role.CONTRIBUTOR)
    queued = await client.request_run(live.url, token, export_id)
    states = [s async for s in client.follow_run(live.url, token, queued["id"])]

    assert states[-1]["status"] == "SUCCEEDED", states[-1]
    counts = states[-1]["counts"]
    city_missing = [i for i in CITY_MISSING if i < count]
    invalid = len(FAKE_ADDRESSES) + len(city_missing)
    assert counts["profilesRead"] == count + 2
    assert counts["contactsSent"] == count
    assert (counts["skippedInvalid"], counts["skippedDuplicate"]) == (1, 1)
    assert counts["cannotAddToList"] == len(COMPLIANCE)
    assert counts["rejectedByDestination"] == invalid
    assert counts["acceptedByDestination"] == count - invalid - len(COMPLIANCE)
    # LoyaltyPoints "n/a" is not a number: left out of the member, which is still sent.
    sent_with_bad_points = [i for i in POINTS_INVALID if i < count and i not in CITY_MISSING]
    assert counts["fieldWarnings"] == len(sent_with_bad_points)

    audience = live.fake.state.audience(CUSTOMERS_LIST_ID)
    subscribed = {m.email_address.lower(): m for m in audience.members.values()
                  if m.status == "subscribed"}  # fmt: skip
    expected = {
        f"member{i}@shop.example"
        for i in range(count)
        if i not in CITY_MISSING and i not in FAKE_ADDRESSES and i not in COMPLIANCE
    }
    assert set(subscribed) == expected
    member = subscribed["member42@shop.example"]
    assert member.merge_fields == {
        "FNAME": "First42",
        "CITY": "City42",
        "POINTS": 42,
        "JOINED": "15/07/2024",
    }
    assert all("POINTS" not in subscribed[f"member{i}@shop.example"].merge_fields
               for i in POINTS_INVALID if f"member{i}@shop.example" in subscribed)  # fmt: skip
    assert live.fake.state.peak_in_flight[DEMO_API_KEY] <= 10
    assert live.fake.state.over_cap_refusals == 0
    batch_calls = [r for r in live.fake.state.requests if r.method == "POST"]
    assert len(batch_calls) == -(-count // 500)
    assert all((r.members or 0) <= 500 for r in batch_calls)


async def test_a_key_that_stops_working_needs_reauthorization_until_an_admin_replaces_it(
    live: Live,
) -> None:
    connection = (await connect(live, DEMO_API_KEY))["connection"]
    segment = make_segment(name="Few", description=None)
    await live.services.store.save_segment(segment)
    await live.services.store.upsert_profiles(list(mc_profiles(30, segment.id)))
    export_id = await create_export(live, connection["id"], segment.id)
    fresh_key = live.fake.state.rotate_key(DEMO_API_KEY)  # the old key stops working

    token = live.token(Role.CONTRIBUTOR)
    queued = await client.request_run(live.url, token, export_id)
    states = [s async for s in client.follow_run(live.url, token, queued["id"])]
    assert states[-1]["status"] == "FAILED"
    assert "API Key Invalid" in states[-1]["message"]
    node = (await live.graphql(CONNECTION, id=connection["id"]))["node"]
    assert node["status"] == "NEEDS_REAUTHORIZATION"
    assert "API Key Invalid" in node["statusMessage"]
    # Until then a run says what to do for an API-key connection: replace the key.
    states = await run_to_its_end(live, token, export_id)
    assert states[-1]["status"] == "FAILED"
    assert "An admin must replace its key (replaceConnectionSecrets)." in states[-1]["message"]

    refused = await live.graphql(
        REPLACE_SECRETS,
        input={"connectionId": connection["id"], "settings": {"apiKey": DEMO_API_KEY}},
    )
    assert refused["replaceConnectionSecrets"]["userErrors"][0]["code"] == "INVALID_CREDENTIALS"
    wrong_name = await live.graphql(
        REPLACE_SECRETS,
        input={"connectionId": connection["id"], "settings": {"listId": "x"}},
    )
    assert wrong_name["replaceConnectionSecrets"]["userErrors"][0]["code"] == "NOT_SECRET"
    contributor = await live.graphql_raw(REPLACE_SECRETS, Role.CONTRIBUTOR,
        input={"connectionId": connection["id"], "settings": {"apiKey": fresh_key}})  # fmt: skip
    assert contributor["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    replaced = await live.graphql(
        REPLACE_SECRETS,
        input={"connectionId": connection["id"], "settings": {"apiKey": fresh_key}},
    )
    payload = replaced["replaceConnectionSecrets"]
    assert payload["userErrors"] == []
    assert payload["connection"]["status"] == "CONNECTED"
    assert fresh_key not in str(payload)

    again = await client.request_run(live.url, token, export_id)
    states = [s async for s in client.follow_run(live.url, token, again["id"])]
    assert states[-1]["status"] == "SUCCEEDED", states[-1]
    assert states[-1]["counts"]["acceptedByDestination"] > 0


async def test_a_mapping_is_checked_against_the_chosen_audiences_merge_fields(
    live: Live,
) -> None:
    connection = (await connect(live, DEMO_API_KEY))["connection"]
    segment = make_segment(name="Checked", description=None)
    await live.services.store.save_segment(segment)
    data = await live.graphql(
        CREATE_EXPORT,
        Role.CONTRIBUTOR,
        input={
            "displayName": "Unchecked fields",
            "connectionId": connection["id"],
            "settings": {"listId": CUSTOMERS_LIST_ID, "statusIfNew": "pending"},
            "fieldMapping": [
                {"source": "EmailAddress", "target": "email_address"},
                {"source": "Nickname", "target": "NICK"},
            ],
            "segmentIds": [to_global_id("Segment", segment.id)],
        },
    )
    payload = data["createExport"]
    assert payload["export"] is None
    codes = {(tuple(e["field"] or []), e["code"]) for e in payload["userErrors"]}
    messages = " | ".join(e["message"] for e in payload["userErrors"])
    assert any(code == "UNKNOWN_MERGE_FIELD" for _, code in codes), payload
    assert any(code == "REQUIRED_TARGET" for _, code in codes), payload
    assert "'NICK'" in messages
    assert "'CITY'" in messages


TARGETS = """
query($id: ID!, $settings: JSON) {
  node(id: $id) {
    ... on Connection {
      withoutSettings: mappingTargets { name }
      forAudience: mappingTargets(exportSettings: $settings) { name label required kind }
    }
  }
}"""


async def test_pickers_get_the_chosen_audiences_merge_fields_with_types_and_flags(
    live: Live,
) -> None:
    connection = (await connect(live, DEMO_API_KEY))["connection"]
    data = await live.graphql(
        TARGETS,
        Role.CONTRIBUTOR,
        id=connection["id"],
        settings={"listId": CUSTOMERS_LIST_ID, "statusIfNew": "pending"},
    )
    node = data["node"]
    assert node["withoutSettings"] == [{"name": "email_address"}]
    targets = {t["name"]: t for t in node["forAudience"]}
    assert targets["email_address"]["required"] is True
    assert targets["CITY"] == {"name": "CITY", "label": "City", "required": True, "kind": "string"}
    assert targets["POINTS"] == {
        "name": "POINTS", "label": "Loyalty points", "required": False, "kind": "number"
    }  # fmt: skip
    assert targets["JOINED"]["kind"] == "date"
    assert "FNAME" in targets
    other = await live.graphql(
        TARGETS, Role.CONTRIBUTOR, id=connection["id"], settings={"listId": NEWSLETTER_LIST_ID}
    )
    # Answers are per audience: the Newsletter audience has no CITY.
    assert "CITY" not in {t["name"] for t in other["node"]["forAudience"]}
    assert "FNAME" in {t["name"] for t in other["node"]["forAudience"]}


async def test_export_settings_for_targets_must_be_an_object(live: Live) -> None:
    connection = (await connect(live, DEMO_API_KEY))["connection"]
    body = await live.graphql_raw(
        TARGETS, Role.CONTRIBUTOR, id=connection["id"], settings=["listId"]
    )
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "exportSettings" in error["message"]
    assert "['listId']" in error["message"]


async def test_a_key_mailchimp_cannot_check_now_is_a_clear_error_not_a_failure(
    live: Live,
) -> None:
    live.fake.state.configure(server_errors_next=100)
    payload = await connect(live, DEMO_API_KEY)
    assert payload["connection"] is None
    [error] = payload["userErrors"]
    assert error["code"] == "DESTINATION_UNAVAILABLE"
    assert "Internal Server Error" in error["message"]
    assert DEMO_API_KEY not in str(payload)


AUTHORIZE = """
mutation($input: AuthorizeConnectionInput!) {
  authorizeConnection(input: $input) { authorizationUrl userErrors { field message code } }
}"""

COMPLETE = """
mutation($input: CompleteConnectionAuthorizationInput!) {
  completeConnectionAuthorization(input: $input) {
    connection { id status account }
    userErrors { field message code }
  }
}"""


async def authorize(live: Live, connection_id: str) -> dict[str, Any]:
    """authorizeConnection, the browser's visit to the fake (which approves at once), then
    completeConnectionAuthorization with the redirect's state and code."""
    started = await live.graphql(AUTHORIZE, input={"connectionId": connection_id})
    assert started["authorizeConnection"]["userErrors"] == []
    url = started["authorizeConnection"]["authorizationUrl"]
    async with httpx.AsyncClient() as browser:
        redirect = await browser.get(url)
    params = httpx.URL(redirect.headers["location"]).params
    done = await live.graphql(COMPLETE, input={"state": params["state"], "code": params["code"]})
    return dict(done["completeConnectionAuthorization"])


async def connect_by_oauth(live: Live) -> dict[str, Any]:
    created = await create_connection(
        live,
        {
            "authKind": "OAUTH2",
            "displayName": "Mailchimp by OAuth",
            "usableBy": "ADMINS_AND_CONTRIBUTORS",
        },
    )
    payload = created["createConnection"]
    assert payload["userErrors"] == []
    connection = dict(payload["connection"])
    assert connection["status"] == "PENDING_AUTHORIZATION"
    assert connection["authKind"] == "OAUTH2"
    return connection


async def test_a_registered_app_connects_by_oauth_and_its_connection_exports(live: Live) -> None:
    connection = await connect_by_oauth(live)
    payload = await authorize(live, connection["id"])
    assert payload["userErrors"] == []
    assert payload["connection"]["status"] == "CONNECTED"
    assert payload["connection"]["account"] == "Fake Mailchimp Co."

    segment = make_segment(name="By OAuth", description=None)
    await live.services.store.save_segment(segment)
    await live.services.store.upsert_profiles(list(mc_profiles(40, segment.id)))
    export_id = await create_export(live, connection["id"], segment.id)
    token = live.token(Role.CONTRIBUTOR)
    queued = await client.request_run(live.url, token, export_id)
    states = [s async for s in client.follow_run(live.url, token, queued["id"])]
    assert states[-1]["status"] == "SUCCEEDED", states[-1]
    assert states[-1]["counts"]["acceptedByDestination"] == 40 - len(FAKE_ADDRESSES)


async def test_a_revoked_oauth_grant_needs_reauthorization_and_authorizing_again_mends_it(
    live: Live,
) -> None:
    connection = await connect_by_oauth(live)
    assert (await authorize(live, connection["id"]))["userErrors"] == []
    segment = make_segment(name="Revoked", description=None)
    await live.services.store.save_segment(segment)
    await live.services.store.upsert_profiles(list(mc_profiles(20, segment.id)))
    export_id = await create_export(live, connection["id"], segment.id)
    live.fake.state.tokens.clear()  # the account's user removed the app's access

    token = live.token(Role.CONTRIBUTOR)
    queued = await client.request_run(live.url, token, export_id)
    states = [s async for s in client.follow_run(live.url, token, queued["id"])]
    assert states[-1]["status"] == "FAILED"
    assert "API Key Invalid" in states[-1]["message"]
    node = (await live.graphql(CONNECTION, id=connection["id"]))["node"]
    assert node["status"] == "NEEDS_REAUTHORIZATION"
    assert node["authKind"] == "OAUTH2"
    states = await run_to_its_end(live, token, export_id)
    assert states[-1]["status"] == "FAILED"
    assert "An admin must authorize it again." in states[-1]["message"]

    # An OAuth2 connection has no key to replace: it is authorized again.
    refused = await live.graphql(
        REPLACE_SECRETS,
        input={"connectionId": connection["id"], "settings": {"apiKey": DEMO_API_KEY}},
    )
    [error] = refused["replaceConnectionSecrets"]["userErrors"]
    assert error["code"] == "NO_SECRETS"
    assert "OAuth2" in error["message"]
    again = await authorize(live, connection["id"])
    assert again["userErrors"] == []
    assert again["connection"]["status"] == "CONNECTED"
    rerun = await client.request_run(live.url, token, export_id)
    states = [s async for s in client.follow_run(live.url, token, rerun["id"])]
    assert states[-1]["status"] == "SUCCEEDED", states[-1]


async def test_an_api_key_connection_says_so_and_does_not_authorize_with_oauth(
    live: Live,
) -> None:
    payload = await connect(live, DEMO_API_KEY)
    assert payload["userErrors"] == []
    assert payload["connection"]["authKind"] == "API_KEY"
    started = await live.graphql(AUTHORIZE, input={"connectionId": payload["connection"]["id"]})
    assert started["authorizeConnection"]["userErrors"][0]["code"] == "NOT_OAUTH"


DESTINATION_TYPES = """
{ destinationTypes { key authKind authKinds { kind configured configurationProblem
    connectionSettings { name secret } } } }"""


async def test_without_a_registered_app_oauth_is_refused_by_name_and_api_keys_still_work(
    live_without_app: Live,
) -> None:
    live = live_without_app
    [mailchimp] = (await live.graphql(DESTINATION_TYPES))["destinationTypes"]
    assert mailchimp["key"] == "mailchimp"
    assert mailchimp["authKind"] == "api_key"
    by_key, by_oauth = mailchimp["authKinds"]
    assert by_key == {
        "kind": "API_KEY",
        "configured": True,
        "configurationProblem": None,
        "connectionSettings": [{"name": "apiKey", "secret": True}],
    }
    assert by_oauth["kind"] == "OAUTH2"
    assert by_oauth["configured"] is False
    assert "SEGPORT_MAILCHIMP_CLIENT_ID" in by_oauth["configurationProblem"]
    assert by_oauth["connectionSettings"] == []

    refused = await create_connection(
        live,
        {
            "authKind": "OAUTH2",
            "displayName": "Mailchimp by OAuth",
        },
    )
    payload = refused["createConnection"]
    assert payload["connection"] is None
    [error] = payload["userErrors"]
    assert (error["field"], error["code"]) == (["authKind"], "NOT_CONFIGURED")
    assert "SEGPORT_MAILCHIMP_CLIENT_ID" in error["message"]

    connected = await connect(live, DEMO_API_KEY)
    assert connected["userErrors"] == []
    assert connected["connection"]["status"] == "CONNECTED"
    assert connected["connection"]["authKind"] == "API_KEY"


async def test_a_way_to_connect_mailchimp_does_not_offer_is_named(live: Live) -> None:
    refused = await create_connection(
        live,
        {
            "authKind": "NONE",
            "displayName": "Mailchimp without credentials",
        },
    )
    [error] = refused["createConnection"]["userErrors"]
    assert (error["field"], error["code"]) == (["authKind"], "UNSUPPORTED_AUTH_KIND")
    assert "NONE" in error["message"]
    assert "API_KEY, OAUTH2" in error["message"]
    with_key = await create_connection(
        live,
        {
            "authKind": "OAUTH2",
            "displayName": "Mailchimp by OAuth",
            "settings": {"apiKey": DEMO_API_KEY},
        },
    )
    [unknown] = with_key["createConnection"]["userErrors"]
    assert (unknown["field"], unknown["code"]) == (["settings", "apiKey"], "UNKNOWN")
    assert DEMO_API_KEY not in str(with_key)
