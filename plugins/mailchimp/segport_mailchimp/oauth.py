"""OAuth2 for registered apps: Mailchimp's authorization code flow.

Access tokens do not expire and there is no refresh token. After the code exchange the
metadata call says the account's data center (``dc``), kept in ``OAuthTokens.extra``
with the account's name and login id. PKCE is not part of what Mailchimp documents:
the code challenge the service makes is not sent, the client secret is.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import httpx

from segport_mailchimp.errors import problem_words
from segport_mailchimp.keys import data_center
from segport_mailchimp.settings import MailchimpSettings
from service.plugins import DestinationContext, DestinationError, InvalidCredentials, OAuthTokens


def authorization_url(settings: MailchimpSettings, *, state: str, redirect_uri: str) -> str:
    problem = settings.missing_oauth_configuration()
    if problem is not None:
        raise DestinationError(problem)
    params = {
        "response_type": "code",
        "client_id": settings.client_id,
        "redirect_uri": redirect_uri,
        "state": state,
    }
    return f"{settings.oauth_base_url.rstrip('/')}/oauth2/authorize?{urlencode(params)}"


def _words(response: httpx.Response) -> str:
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("error"):
        return f"Mailchimp: {body['error']}" + (
            f": {body['error_description']}" if body.get("error_description") else ""
        )
    return problem_words(response)


async def exchange_code(
    ctx: DestinationContext, settings: MailchimpSettings, *, code: str, redirect_uri: str
) -> OAuthTokens:
    """The token for ``code``, then the metadata call for its data center."""
    base = settings.oauth_base_url.rstrip("/")
    answer = await ctx.http.post(
        f"{base}/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "client_id": settings.client_id,
            "client_secret": settings.client_secret.get_secret_value(),
            "redirect_uri": redirect_uri,
            "code": code,
        },
    )
    if answer.status_code != 200:
        raise InvalidCredentials("Mailchimp refused the authorization: " + _words(answer))
    token = answer.json().get("access_token")
    if not isinstance(token, str) or not token:
        raise InvalidCredentials("Mailchimp's token answer holds no access_token")
    metadata = await ctx.http.get(
        f"{base}/oauth2/metadata", headers={"Authorization": f"OAuth {token}"}
    )
    if metadata.status_code != 200:
        raise InvalidCredentials("Mailchimp's metadata call failed: " + _words(metadata))
    meta = metadata.json()
    dc = str(meta.get("dc", ""))
    if data_center(f"{'0' * 32}-{dc}") is None:
        raise InvalidCredentials(f"Mailchimp's metadata names no data center ({dc!r})")
    login = meta.get("login") or {}
    return OAuthTokens(
        access_token=token,
        extra={
            "dc": dc,
            "accountname": meta.get("accountname"),
            "login_id": login.get("login_id") if isinstance(login, dict) else None,
        },
    )
