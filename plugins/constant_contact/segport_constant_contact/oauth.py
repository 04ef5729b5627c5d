"""OAuth2 with Constant Contact, in the flow the app is registered for (``oauth_flow``):

- ``server``: the authorization code flow; the token endpoint takes HTTP Basic client
  authentication with the client secret; no PKCE (Constant Contact's guide describes
  PKCE only for clients without a secret, and nothing published combines the two);
- ``pkce``: the PKCE flow (S256) for public-client registrations: ``client_id`` and
  ``code_verifier`` in the form, never a secret.

See docs/constant-contact.md, "OAuth2". The access token is a JWT; its ``exp`` claim
(read without verifying: we are not its audience) says when it expires. After the code
exchange the account's ``encoded_account_id`` is read from ``GET /account/summary`` and
returned in ``OAuthTokens.extra`` so that the service can tell accounts apart.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
import orjson

from segport_constant_contact.settings import ConstantContactSettings
from segport_constant_contact.transport import error_messages
from service.plugins import (
    AuthorizationLost,
    DestinationContext,
    DestinationError,
    InvalidCredentials,
    OAuthTokens,
    TransientDestinationError,
)

SCOPES = "contact_data offline_access account_read"
ACCOUNT_ID_KEY = "encoded_account_id"
"""Where the account's id is kept in ``OAuthTokens.extra``."""
TOKEN_ENDPOINT_TRIES = 3
"""The token endpoint allows about 1 request per second; a 429 there is waited out briefly."""


def authorization_url(
    settings: ConstantContactSettings, *, state: str, code_challenge: str, redirect_uri: str
) -> str:
    problem = settings.missing_configuration()
    if problem is not None:
        raise DestinationError(problem)
    params = {
        "response_type": "code",
        "client_id": settings.client_id,
        "redirect_uri": redirect_uri,
        "scope": SCOPES,
        "state": state,
    }
    if settings.oauth_flow == "pkce":
        params.update(code_challenge=code_challenge, code_challenge_method="S256")
    return f"{settings.authorize_url}?{urlencode(params)}"


def access_token_expiry(access_token: str, expires_in: Any) -> dt.datetime | None:
    """When the access token expires: its JWT ``exp``, else ``expires_in`` from now."""
    try:
        claims = jwt.decode(access_token, options={"verify_signature": False})
        exp = claims.get("exp")
        if isinstance(exp, int | float):
            return dt.datetime.fromtimestamp(exp, dt.UTC)
    except jwt.PyJWTError:
        pass
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
        return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=expires_in)
    return None


async def _post_token(
    ctx: DestinationContext, settings: ConstantContactSettings, form: dict[str, str]
) -> httpx.Response:
    # The server flow authenticates with HTTP Basic; the PKCE flow names the client only.
    client: dict[str, Any] = {}
    if settings.oauth_flow == "server":
        secret = settings.client_secret.get_secret_value()
        client["auth"] = httpx.BasicAuth(settings.client_id, secret)
    else:
        form = {**form, "client_id": settings.client_id}
    for attempt in range(1, TOKEN_ENDPOINT_TRIES + 1):
        try:
            response = await ctx.http.post(
                settings.token_url,
                data=form,
                **client,
                headers={"Accept": "application/json"},
            )
        except httpx.TransportError as exc:
            if attempt == TOKEN_ENDPOINT_TRIES:
                raise TransientDestinationError(
                    f"{type(exc).__name__} talking to Constant Contact's token endpoint"
                ) from None
            await ctx.sleep(float(attempt))
            continue
        if response.status_code in (429, 500, 502, 503, 504) and attempt < TOKEN_ENDPOINT_TRIES:
            await ctx.sleep(float(attempt))
            continue
        return response
    raise AssertionError("unreachable")


def _tokens_from(response: httpx.Response, previous_refresh: str | None) -> OAuthTokens:
    body = orjson.loads(response.content)
    access = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(access, str) or not access:
        raise InvalidCredentials("Constant Contact's token answer has no access_token")
    return OAuthTokens(
        access_token=access,
        # Long-lived refresh tokens may not be repeated in a refresh answer: keep ours.
        refresh_token=body.get("refresh_token") or previous_refresh,
        expires_at=access_token_expiry(access, body.get("expires_in")),
        scope=body.get("scope"),
    )


def refreshed_keeping_account(fresh: OAuthTokens, previous: OAuthTokens) -> OAuthTokens:
    """A refresh answer names no account: keep the one the connection was made with."""
    if ACCOUNT_ID_KEY in previous.extra and ACCOUNT_ID_KEY not in fresh.extra:
        fresh.extra[ACCOUNT_ID_KEY] = previous.extra[ACCOUNT_ID_KEY]
    return fresh


async def exchange_code(
    ctx: DestinationContext,
    settings: ConstantContactSettings,
    *,
    code: str,
    code_verifier: str,
    redirect_uri: str,
) -> OAuthTokens:
    response = await _post_token(
        ctx,
        settings,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            **({"code_verifier": code_verifier} if settings.oauth_flow == "pkce" else {}),
        },
    )
    if response.status_code != 200:
        raise InvalidCredentials(
            "Constant Contact refused the authorization: " + error_messages(response)
        )
    tokens = _tokens_from(response, None)
    account_id = await encoded_account_id(ctx, settings, tokens.access_token)
    if account_id is not None:
        tokens.extra[ACCOUNT_ID_KEY] = account_id
    return tokens


async def encoded_account_id(
    ctx: DestinationContext, settings: ConstantContactSettings, access_token: str
) -> str | None:
    """The account's ``encoded_account_id`` from ``GET /account/summary`` (scope
    ``account_read``), asked with the new token itself (the service has not stored it yet).
    None when the account cannot be read (the connection still works; it just cannot be
    told apart from another account)."""
    for attempt in range(1, TOKEN_ENDPOINT_TRIES + 1):
        # An API call like any other: within the application's rate, retried when throttled
        # (an account that could not be read cannot be told apart from another one).
        await ctx.rate_limiter.acquire()
        try:
            response = await ctx.http.get(
                settings.api_url("/account/summary"),
                headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
            )
        except httpx.TransportError:
            return None
        if response.status_code in (429, 500, 502, 503, 504) and attempt < TOKEN_ENDPOINT_TRIES:
            await ctx.sleep(float(attempt))
            continue
        break
    if response.status_code != 200:
        return None
    body = orjson.loads(response.content)
    value = body.get(ACCOUNT_ID_KEY) if isinstance(body, dict) else None
    return str(value) if value else None


async def refresh_tokens(
    ctx: DestinationContext, settings: ConstantContactSettings, tokens: OAuthTokens
) -> OAuthTokens:
    if not tokens.refresh_token:
        raise AuthorizationLost(
            "no refresh token is stored for this Constant Contact connection; authorize again"
        )
    response = await _post_token(
        ctx, settings, {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token}
    )
    if response.status_code == 200:
        return refreshed_keeping_account(_tokens_from(response, tokens.refresh_token), tokens)
    words = error_messages(response)
    if response.status_code in (400, 401):
        # invalid_grant (superseded, expired or revoked refresh token) and invalid_client
        # both mean only a new authorization in the browser can help.
        raise AuthorizationLost(f"Constant Contact refused the refresh token: {words}")
    raise TransientDestinationError(
        f"Constant Contact's token endpoint answered {response.status_code}: {words}"
    )
