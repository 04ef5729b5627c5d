"""Mailchimp by OAuth2 for a registered app (the ``oauth2`` way to connect of ``mailchimp``)
against the fake: the authorization URL, the code exchange and the metadata call for the
data center, uploads with the token, no refresh, and an app that is not configured named by
its variables while API-key connections need nothing configured."""

from __future__ import annotations

import httpx
import pytest
from mc_support import EXPORT, fake, http  # noqa: F401 (fixtures, see pyproject)
from segport_mailchimp import Mailchimp, MailchimpSettings
from segport_mailchimp.fake import RunningFake

from service.plugins import AuthorizationLost, InvalidCredentials, OAuthTokens
from service.plugins.testing import InMemoryCredentials, make_context, pack_batches

REDIRECT = "http://127.0.0.1:8000/oauth/callback"


@pytest.fixture
def oauth_destination(fake: RunningFake) -> Mailchimp:
    config = fake.state.config
    return Mailchimp(
        MailchimpSettings(
            api_base_url=fake.api_base_url,
            oauth_base_url=fake.url,
            client_id=config.client_id,
            client_secret=config.client_secret,
            backoff_base_seconds=0.01,
            backoff_max_seconds=0.05,
        )
    )


async def _authorize(destination: Mailchimp, http: httpx.AsyncClient) -> OAuthTokens:
    url = destination.authorization_url(
        state="st4te", code_challenge="unused", redirect_uri=REDIRECT, settings={}
    )
    assert "client_id=fake-mailchimp-client" in url
    redirect = await http.get(url)
    assert redirect.status_code == 302
    location = httpx.URL(redirect.headers["location"])
    assert location.params["state"] == "st4te"
    ctx = make_context(destination, http, auth_kind="oauth2")
    return await destination.exchange_code(
        ctx, code=location.params["code"], code_verifier="unused", redirect_uri=REDIRECT
    )


async def test_a_code_becomes_a_token_with_the_accounts_data_center_and_uploads_work(
    fake: RunningFake, oauth_destination: Mailchimp, http: httpx.AsyncClient
) -> None:
    tokens = await _authorize(oauth_destination, http)
    assert tokens.refresh_token is None
    assert tokens.expires_at is None
    assert tokens.extra["dc"] == "us6"
    assert oauth_destination.account_identity(tokens) == tokens.extra["login_id"]
    ctx = make_context(
        oauth_destination, http, tokens=tokens, export_settings=EXPORT, auth_kind="oauth2"
    )
    assert await oauth_destination.verify_connection(ctx) == "Fake Mailchimp Co."
    [batch] = pack_batches(oauth_destination, [{"email_address": "o@shop.example"}], EXPORT)
    outcome = await oauth_destination.open_session(ctx).upload(batch)
    assert outcome.accepted == 1


async def test_a_code_is_single_use_and_a_refused_token_loses_the_connection(
    fake: RunningFake, oauth_destination: Mailchimp, http: httpx.AsyncClient
) -> None:
    url = oauth_destination.authorization_url(
        state="s", code_challenge="c", redirect_uri=REDIRECT, settings={}
    )
    code = httpx.URL((await http.get(url)).headers["location"]).params["code"]
    ctx = make_context(oauth_destination, http, auth_kind="oauth2")
    await oauth_destination.exchange_code(ctx, code=code, code_verifier="", redirect_uri=REDIRECT)
    with pytest.raises(InvalidCredentials, match="invalid_grant"):
        await oauth_destination.exchange_code(
            ctx, code=code, code_verifier="", redirect_uri=REDIRECT
        )
    stale = OAuthTokens("not-a-token", extra={"dc": "us6"})
    credentials = InMemoryCredentials(stale)
    lost = make_context(
        oauth_destination,
        http,
        credentials=credentials,
        export_settings=EXPORT,
        auth_kind="oauth2",
    )
    with pytest.raises(AuthorizationLost, match="API Key Invalid"):
        await oauth_destination.list_choices(lost, "listId")
    assert credentials.rejections
    with pytest.raises(AuthorizationLost, match="cannot be refreshed"):
        await oauth_destination.refresh_tokens(lost, stale)


def test_an_app_that_is_not_configured_is_named_by_its_variables() -> None:
    destination = Mailchimp(MailchimpSettings(client_id="", client_secret=""))
    problem = destination.configuration_problem_for("oauth2")
    assert problem is not None
    assert "SEGPORT_MAILCHIMP_CLIENT_ID" in problem
    assert destination.configuration_problem_for("api_key") is None


def test_one_destination_offers_both_ways_and_asks_for_the_key_only_for_api_keys() -> None:
    destination = Mailchimp(MailchimpSettings())
    assert destination.key == "mailchimp"
    assert destination.auth_kinds == ("api_key", "oauth2")
    assert destination.auth_kind == "api_key"
    assert [s.name for s in destination.connection_settings_for("api_key")] == ["apiKey"]
    assert destination.connection_settings_for("oauth2") == ()
    missing = destination.validate_connection_settings_for("api_key", {})
    assert [(e.field, e.code) for e in missing] == [("apiKey", "REQUIRED")]
    assert destination.validate_connection_settings_for("oauth2", {}) == []
    [unknown] = destination.validate_connection_settings_for("oauth2", {"apiKey": "x"})
    assert unknown.field == "apiKey"
