"""OAuth2 against the fake, in both of Constant Contact's flows (docs/constant-contact.md,
"OAuth2"): the server flow with the secret and the PKCE flow without; code reuse,
rotating refresh tokens, the account id, and the account and list calls a connection makes."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import secrets
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from cc_support import GENERAL_LIST, REDIRECT_URI, fast_context, tokens_from
from pydantic import SecretStr
from segport_constant_contact import ConstantContact, ConstantContactSettings
from segport_constant_contact.fake import RunningFake

from service.plugins import AuthorizationLost, DestinationError, InvalidCredentials


@pytest.fixture
def pkce_destination(settings: ConstantContactSettings) -> ConstantContact:
    """The plugin registered as a public client: the PKCE flow, no secret."""
    return ConstantContact(
        settings.model_copy(update={"oauth_flow": "pkce", "client_secret": SecretStr("")})
    )


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def authorize(
    destination: ConstantContact, http: httpx.AsyncClient, challenge: str, state: str = "st-1"
) -> str:
    """Follow the authorization URL as a browser would; return the code it redirects with."""
    url = destination.authorization_url(
        state=state, code_challenge=challenge, redirect_uri=REDIRECT_URI, settings={}
    )
    response = await http.get(url)
    assert response.status_code == 302, response.text
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT_URI
    query = parse_qs(location.query)
    assert query["state"] == [state]
    return query["code"][0]


def test_the_server_flow_asks_for_a_code_without_pkce(
    destination: ConstantContact, fake: RunningFake
) -> None:
    assert destination.settings.oauth_flow == "server"
    url = urlsplit(
        destination.authorization_url(
            state="s", code_challenge="c", redirect_uri=REDIRECT_URI, settings={}
        )
    )
    assert f"{url.scheme}://{url.netloc}{url.path}" == (
        f"{fake.auth_base_url}/oauth2/default/v1/authorize"
    )
    assert parse_qs(url.query) == {
        "response_type": ["code"],
        "client_id": [fake.state.config.client_id],
        "redirect_uri": [REDIRECT_URI],
        "scope": ["contact_data offline_access account_read"],
        "state": ["s"],
    }


def test_the_pkce_flow_asks_for_a_code_with_an_s256_challenge(
    pkce_destination: ConstantContact,
) -> None:
    url = urlsplit(
        pkce_destination.authorization_url(
            state="s", code_challenge="c", redirect_uri=REDIRECT_URI, settings={}
        )
    )
    query = parse_qs(url.query)
    assert (query["code_challenge"], query["code_challenge_method"]) == (["c"], ["S256"])


def test_base_urls_and_client_come_from_the_environment_at_use_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SEGPORT_CONSTANT_CONTACT_CLIENT_ID", "client-from-env")
    monkeypatch.setenv("SEGPORT_CONSTANT_CONTACT_CLIENT_SECRET", "secret-from-env")
    destination = ConstantContact()
    default = destination.authorization_url(
        state="s", code_challenge="c", redirect_uri=REDIRECT_URI, settings={}
    )
    assert default.startswith("https://authz.constantcontact.com/oauth2/default/v1/authorize?")
    monkeypatch.setenv("SEGPORT_CONSTANT_CONTACT_AUTH_BASE_URL", "http://127.0.0.1:9/")
    moved = destination.authorization_url(
        state="s", code_challenge="c", redirect_uri=REDIRECT_URI, settings={}
    )
    assert moved.startswith("http://127.0.0.1:9/oauth2/default/v1/authorize?")
    assert "client_id=client-from-env" in moved


def test_without_a_client_id_no_authorize_url_is_made_and_connections_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SEGPORT_CONSTANT_CONTACT_CLIENT_ID", raising=False)
    destination = ConstantContact()
    with pytest.raises(DestinationError, match="set SEGPORT_CONSTANT_CONTACT_CLIENT_ID"):
        destination.authorization_url(
            state="s", code_challenge="c", redirect_uri=REDIRECT_URI, settings={}
        )
    problem = destination.configuration_problem()
    assert problem is not None
    assert "SEGPORT_CONSTANT_CONTACT_CLIENT_ID" in problem
    monkeypatch.setenv("SEGPORT_CONSTANT_CONTACT_CLIENT_ID", "an-id")
    monkeypatch.delenv("SEGPORT_CONSTANT_CONTACT_CLIENT_SECRET", raising=False)
    problem = destination.configuration_problem()
    assert problem is not None
    assert "SEGPORT_CONSTANT_CONTACT_CLIENT_SECRET" in problem
    monkeypatch.setenv("SEGPORT_CONSTANT_CONTACT_OAUTH_FLOW", "pkce")
    assert destination.configuration_problem() is None


async def test_code_exchange_gives_tokens_expiring_at_the_jwt_exp(
    destination: ConstantContact, fake: RunningFake, http: httpx.AsyncClient
) -> None:
    fake.state.configure(access_token_ttl_seconds=600)
    verifier, challenge = pkce()
    code = await authorize(destination, http, challenge)
    ctx = fast_context(fake, destination, http)
    tokens = await destination.exchange_code(
        ctx, code=code, code_verifier=verifier, redirect_uri=REDIRECT_URI
    )
    exp = jwt.decode(tokens.access_token, options={"verify_signature": False})["exp"]
    assert tokens.expires_at == dt.datetime.fromtimestamp(exp, dt.UTC)
    assert tokens.refresh_token
    assert tokens.scope == "contact_data offline_access account_read"
    assert tokens.extra == {"encoded_account_id": fake.state.account["encoded_account_id"]}
    refreshed = await destination.refresh_tokens(ctx, tokens)
    assert refreshed.extra == tokens.extra  # the refresh answer names no account: kept


async def test_code_is_single_use(
    destination: ConstantContact, fake: RunningFake, http: httpx.AsyncClient
) -> None:
    verifier, challenge = pkce()
    code = await authorize(destination, http, challenge)
    ctx = fast_context(fake, destination, http)
    await destination.exchange_code(
        ctx, code=code, code_verifier=verifier, redirect_uri=REDIRECT_URI
    )
    with pytest.raises(InvalidCredentials, match="invalid or has been used"):
        await destination.exchange_code(
            ctx, code=code, code_verifier=verifier, redirect_uri=REDIRECT_URI
        )


async def test_pkce_flow_connects_a_public_client_without_any_secret(
    pkce_destination: ConstantContact, fake: RunningFake, http: httpx.AsyncClient
) -> None:
    fake.state.configure(oauth_flow="pkce")
    verifier, challenge = pkce()
    code = await authorize(pkce_destination, http, challenge)
    ctx = fast_context(fake, pkce_destination, http)
    sent: list[httpx.Request] = []
    http.event_hooks["request"].append(lambda request: _record(sent, request))
    tokens = await pkce_destination.exchange_code(
        ctx, code=code, code_verifier=verifier, redirect_uri=REDIRECT_URI
    )
    assert tokens.refresh_token
    token_request = next(r for r in sent if r.url.path.endswith("/token"))
    assert "authorization" not in token_request.headers
    assert b"client_id=fake-client-id" in token_request.content
    assert fake.state.config.client_secret.encode() not in token_request.content
    assert (await pkce_destination.refresh_tokens(ctx, tokens)).access_token


async def _record(sent: list[httpx.Request], request: httpx.Request) -> None:
    sent.append(request)


async def test_wrong_pkce_verifier_is_refused(
    pkce_destination: ConstantContact, fake: RunningFake, http: httpx.AsyncClient
) -> None:
    fake.state.configure(oauth_flow="pkce")
    _, challenge = pkce()
    code = await authorize(pkce_destination, http, challenge)
    ctx = fast_context(fake, pkce_destination, http)
    with pytest.raises(InvalidCredentials, match="PKCE verification failed"):
        await pkce_destination.exchange_code(
            ctx, code=code, code_verifier=pkce()[0], redirect_uri=REDIRECT_URI
        )


async def test_a_public_client_registration_refuses_the_server_flow(
    destination: ConstantContact, fake: RunningFake, http: httpx.AsyncClient
) -> None:
    fake.state.configure(oauth_flow="pkce")
    base = f"{fake.auth_base_url}/oauth2/default/v1/authorize"
    url = destination.authorization_url(
        state="s", code_challenge="c", redirect_uri=REDIRECT_URI, settings={}
    )
    refused = await http.get(url)
    assert refused.status_code == 400
    assert "code_challenge is required" in refused.text
    assert url.startswith(base)
    ctx = fast_context(fake, destination, http)
    with pytest.raises(AuthorizationLost, match="public client"):
        await destination.refresh_tokens(ctx, tokens_from(fake.state.issue_tokens()))


async def test_a_server_registration_refuses_a_token_request_without_the_secret(
    pkce_destination: ConstantContact, fake: RunningFake, http: httpx.AsyncClient
) -> None:
    fake.state.configure(oauth_flow="server")
    verifier, challenge = pkce()
    code = await authorize(pkce_destination, http, challenge)
    ctx = fast_context(fake, pkce_destination, http)
    with pytest.raises(InvalidCredentials, match="client authentication failed"):
        await pkce_destination.exchange_code(
            ctx, code=code, code_verifier=verifier, redirect_uri=REDIRECT_URI
        )


async def test_the_server_flow_sends_no_verifier_and_the_fake_holds_it_to_the_secret(
    destination: ConstantContact, fake: RunningFake, http: httpx.AsyncClient
) -> None:
    fake.state.configure(oauth_flow="server")
    verifier, challenge = pkce()
    code = await authorize(destination, http, challenge)
    assert fake.state.codes[code].challenge is None
    ctx = fast_context(fake, destination, http)
    tokens = await destination.exchange_code(
        ctx, code=code, code_verifier=verifier, redirect_uri=REDIRECT_URI
    )
    assert tokens.access_token


async def test_redirect_uri_must_match_the_authorization_request(
    destination: ConstantContact, fake: RunningFake, http: httpx.AsyncClient
) -> None:
    verifier, challenge = pkce()
    code = await authorize(destination, http, challenge)
    ctx = fast_context(fake, destination, http)
    with pytest.raises(InvalidCredentials, match="redirect_uri does not match"):
        await destination.exchange_code(
            ctx,
            code=code,
            code_verifier=verifier,
            redirect_uri="http://localhost:8000/oauth/callback",
        )


async def test_wrong_client_secret_is_refused_without_echoing_it(
    fake: RunningFake, http: httpx.AsyncClient, settings: ConstantContactSettings
) -> None:
    wrong = ConstantContact(
        settings.model_copy(update={"client_secret": SecretStr("s3cr3t-wrong")})
    )
    verifier, challenge = pkce()
    code = await authorize(wrong, http, challenge)
    ctx = fast_context(fake, wrong, http)
    with pytest.raises(InvalidCredentials) as caught:
        await wrong.exchange_code(ctx, code=code, code_verifier=verifier, redirect_uri=REDIRECT_URI)
    assert "client authentication failed" in str(caught.value)
    assert "s3cr3t-wrong" not in str(caught.value)


async def test_authorize_refuses_unregistered_redirect_uri_and_missing_pkce(
    fake: RunningFake, http: httpx.AsyncClient
) -> None:
    base = f"{fake.auth_base_url}/oauth2/default/v1/authorize"
    params = {
        "response_type": "code",
        "client_id": fake.state.config.client_id,
        "redirect_uri": "https://evil.example/cb",
        "scope": "contact_data",
        "state": "s",
        "code_challenge": "c",
        "code_challenge_method": "S256",
    }
    refused = await http.get(base, params=params)
    assert refused.status_code == 400
    assert "https://evil.example/cb" in refused.text
    params.update(redirect_uri=REDIRECT_URI, code_challenge_method="plain")
    refused = await http.get(base, params=params)
    assert refused.status_code == 400
    assert "not S256" in refused.text


async def test_consent_page_knob_asks_before_redirecting(
    fake: RunningFake, http: httpx.AsyncClient, destination: ConstantContact
) -> None:
    fake.state.configure(consent_page=True)
    url = destination.authorization_url(
        state="s", code_challenge="c", redirect_uri=REDIRECT_URI, settings={}
    )
    page = await http.get(url)
    assert page.status_code == 200
    assert "Allow" in page.text
    form = dict(parse_qs(urlsplit(url).query, keep_blank_values=True))
    flat = {k: v[0] for k, v in form.items()}
    approved = await http.post(url.split("?")[0], data={**flat, "decision": "approve"})
    assert approved.status_code == 302
    assert "code=" in approved.headers["location"]


async def test_rotating_refresh_supersedes_the_old_refresh_token(
    destination: ConstantContact, fake: RunningFake, http: httpx.AsyncClient
) -> None:
    ctx = fast_context(fake, destination, http)
    first = tokens_from(fake.state.issue_tokens())
    second = await destination.refresh_tokens(ctx, first)
    assert second.refresh_token != first.refresh_token
    assert second.access_token != first.access_token
    with pytest.raises(AuthorizationLost, match="unknown, invalid, or expired refresh token"):
        await destination.refresh_tokens(ctx, first)
    assert (await destination.refresh_tokens(ctx, second)).refresh_token


async def test_long_lived_refresh_token_is_kept(
    destination: ConstantContact, fake: RunningFake, http: httpx.AsyncClient
) -> None:
    fake.state.configure(rotating_refresh_tokens=False)
    ctx = fast_context(fake, destination, http)
    first = tokens_from(fake.state.issue_tokens())
    again = await destination.refresh_tokens(ctx, first)
    assert again.refresh_token == first.refresh_token
    assert (await destination.refresh_tokens(ctx, first)).access_token


async def test_token_endpoint_limit_of_one_per_second_is_waited_out(
    destination: ConstantContact, fake: RunningFake, http: httpx.AsyncClient
) -> None:
    fake.state.configure(token_requests_per_second=1, rotating_refresh_tokens=False)
    ctx = fast_context(fake, destination, http)
    ctx.sleep = asyncio.sleep  # the fake's window is real time
    tokens = tokens_from(fake.state.issue_tokens())
    first = await destination.refresh_tokens(ctx, tokens)
    second = await destination.refresh_tokens(ctx, tokens)  # 429 at first, then waited out
    assert first.access_token != second.access_token


async def test_verify_connection_names_the_account(
    destination: ConstantContact, fake: RunningFake, http: httpx.AsyncClient
) -> None:
    ctx = fast_context(fake, destination, http)
    assert await destination.verify_connection(ctx) == "Fake Outfitters"


async def test_verify_connection_with_a_dead_token_is_invalid_credentials(
    destination: ConstantContact, fake: RunningFake, http: httpx.AsyncClient
) -> None:
    ctx = fast_context(fake, destination, http)
    fake.state.expire_access_tokens()
    fake.state.refresh_tokens.clear()  # the app was disconnected in Constant Contact
    with pytest.raises(InvalidCredentials, match="unknown, invalid, or expired refresh token"):
        await destination.verify_connection(ctx)


async def test_list_choices_page_through_every_list_with_member_counts(
    destination: ConstantContact, fake: RunningFake, http: httpx.AsyncClient
) -> None:
    for i in range(1001):
        fake.state.add_list(f"List {i:04d}")
    fake.state.lists[GENERAL_LIST].members.update({"a@example.com", "b@example.com"})
    ctx = fast_context(fake, destination, http)
    choices = await destination.list_choices(ctx, "listId")
    assert len(choices) == 1003
    general = next(c for c in choices if c.id == GENERAL_LIST)
    assert (general.name, general.member_count) == ("General Interest", 2)
    pages = [r for r in fake.state.request_log if r.path == "/v3/contact_lists"]
    assert len(pages) == 3  # 500 a page, the published maximum


async def test_check_export_settings_finds_the_list_or_names_the_missing_one(
    destination: ConstantContact, fake: RunningFake, http: httpx.AsyncClient
) -> None:
    ctx = fast_context(fake, destination, http)
    assert await destination.check_export_settings(ctx, {"listId": GENERAL_LIST}) == []
    missing = "11111111-2222-4333-8444-555555555555"
    [error] = await destination.check_export_settings(ctx, {"listId": missing})
    assert (error.field, error.code) == ("listId", "NOT_FOUND")
    assert missing in error.message
