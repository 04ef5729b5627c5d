"""Connecting a destination with OAuth2 (authorization code + PKCE S256).

:class:`OAuthFlow` starts an authorization (a random, single-use ``state``
bound to the connection and the user, expiring in minutes, and a PKCE
verifier kept server-side) and completes it (the code is exchanged, the
tokens are encrypted into the connection, the account is looked up, the
connection becomes CONNECTED). Every refusal is an :class:`OAuthError` with
a stable code, and leaves the connection as it was, except one the admin made
on the provider's page: that is recorded as the connection's status message,
saying what to do next (:meth:`OAuthFlow.refuse`).

:func:`oauth_callback` is the ``GET /oauth/callback`` endpoint the provider
redirects the browser to. It sends the browser on to ``SEGPORT_UI_URL`` or
shows a short HTML page. Tokens never appear in a log line, an error or a page.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Mapping
from datetime import timedelta
from html import escape
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx
import structlog
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from service.access.crypto import CredentialDecryptionError
from service.connections.credentials import PendingCredentials, open_credentials, seal_credentials
from service.connections.destinations import DestinationAccess, auth_kind_of
from service.domain import Connection, ConnectionStatus, OAuthState, utcnow
from service.domain.ids import to_global_id
from service.plugins.api import Destination, DestinationError, OAuthTokens

log = structlog.get_logger(__name__)


class OAuthError(Exception):
    """An authorization was refused; ``code`` is stable, ``message`` says why to a person.

    Codes: ``STATE_UNKNOWN``, ``STATE_EXPIRED``, ``STATE_FOREIGN``,
    ``CONNECTION_GONE``, ``NOT_OAUTH``, ``EXCHANGE_FAILED`` and, from the
    callback only, ``MISSING_PARAMETER`` and ``AUTHORIZATION_DENIED``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def pkce_pair() -> tuple[str, str]:
    """A PKCE code verifier (86 URL-safe characters) and its S256 challenge (RFC 7636)."""
    verifier = secrets.token_urlsafe(64)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    challenge = base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")
    return verifier, challenge


class OAuthFlow:
    """Starts and completes OAuth authorizations of connections.

    ``redirect_uri`` is where the provider sends the browser back
    (``SEGPORT_OAUTH_REDIRECT_URI``); an authorization not completed within
    ``state_ttl_seconds`` expires.
    """

    def __init__(
        self, access: DestinationAccess, *, redirect_uri: str, state_ttl_seconds: int
    ) -> None:
        self._access = access
        self._redirect_uri = redirect_uri
        self._state_ttl_seconds = state_ttl_seconds

    def _oauth_destination(self, connection: Connection) -> Destination:
        destination = self._access.destinations.get(connection.destination_type)
        if destination is None or auth_kind_of(destination, connection) != "oauth2":
            raise OAuthError(
                "NOT_OAUTH",
                f"connection {connection.display_name!r} (type "
                f"{connection.destination_type!r}) does not authorize with OAuth",
            )
        return destination

    async def start(
        self, connection: Connection, user: str, *, allow_account_change: bool = False
    ) -> str:
        """Remember a new authorization of ``connection`` by ``user``; the URL to send
        the browser to. ``allow_account_change``: the admin confirms that it may connect a
        different account than the connection had."""
        destination = self._oauth_destination(connection)
        verifier, challenge = pkce_pair()
        state = OAuthState(
            state=secrets.token_urlsafe(32),
            connection_id=connection.id,
            user=user,
            code_verifier=verifier,
            redirect_uri=self._redirect_uri,
            expires_at=utcnow() + timedelta(seconds=self._state_ttl_seconds),
            allow_account_change=allow_account_change,
        )
        url = destination.authorization_url(
            state=state.state,
            code_challenge=challenge,
            redirect_uri=state.redirect_uri,
            settings=connection.settings,
        )
        await self._access.store.save_oauth_state(state)
        log.info("oauth_started", connection_id=connection.id, user=user)
        return url

    async def complete(self, state: str, code: str, user: str | None) -> Connection:
        """Finish the authorization ``state`` names with the provider's ``code``.

        ``user``: the caller when known (the GraphQL mutation), who must be the one
        who started it; None from the browser callback, where the unguessable,
        single-use state is the proof.
        """
        store = self._access.store
        pending = await store.consume_oauth_state(state)
        if pending is None:
            raise OAuthError(
                "STATE_UNKNOWN",
                "this authorization is unknown or was already used; start connecting again",
            )
        if pending.expires_at <= utcnow():
            raise OAuthError(
                "STATE_EXPIRED",
                "this authorization expired (it is valid for "
                f"{self._state_ttl_seconds} seconds); "
                "start connecting again",
            )
        if user is not None and pending.user != user:
            # Put it back: the user who started it may still finish it.
            await store.save_oauth_state(pending)
            raise OAuthError("STATE_FOREIGN", "this authorization was started by another user")
        connection = await store.get_connection(pending.connection_id)
        if connection is None:
            raise OAuthError(
                "CONNECTION_GONE", "the connection being authorized was removed meanwhile"
            )
        destination = self._oauth_destination(connection)
        try:
            secrets_ = open_credentials(self._access.cipher, connection.credentials).secrets
        except CredentialDecryptionError:
            # Re-authorizing is how a connection whose old credentials no key opens
            # recovers: new tokens replace what cannot be read.
            log.warning("oauth_replacing_undecryptable_credentials", connection_id=connection.id)
            secrets_ = {}

        credentials: PendingCredentials | None = None
        try:
            bootstrap = self._access.bare_context(destination, connection, _NoCredentials())
            tokens = await destination.exchange_code(
                bootstrap,
                code=code,
                code_verifier=pending.code_verifier,
                redirect_uri=pending.redirect_uri,
            )
            credentials = PendingCredentials(destination, tokens, secrets_)
            ctx = self._access.bare_context(destination, connection, credentials)
            credentials.ctx = ctx
            account = await destination.verify_connection(ctx)
        except DestinationError as exc:
            raise OAuthError("EXCHANGE_FAILED", str(exc)) from None
        except httpx.HTTPError as exc:
            raise OAuthError(
                "EXCHANGE_FAILED",
                f"could not reach {destination.display_name} ({type(exc).__name__})",
            ) from None

        # Re-read: the connection may have been edited or removed during the exchange.
        current = await store.get_connection(connection.id)
        if current is None:
            raise OAuthError(
                "CONNECTION_GONE", "the connection being authorized was removed meanwhile"
            )
        account_id = destination.account_identity(credentials.current)
        if (
            account_id is not None
            and current.account_id is not None
            and account_id != current.account_id
            and not pending.allow_account_change
        ):
            log.info("oauth_account_change_refused", connection_id=current.id)
            raise OAuthError("ACCOUNT_CHANGED", _account_changed(destination, current, account))
        current.account_id = account_id or current.account_id
        current.credentials = seal_credentials(
            self._access.cipher, tokens=credentials.current, secrets=secrets_
        )
        current.account = account
        current.status = ConnectionStatus.CONNECTED
        current.status_message = None
        current.updated_at = utcnow()
        await store.save_connection(current)
        log.info("oauth_completed", connection_id=current.id, user=pending.user)
        return current

    async def refuse(self, state: str, reason: str) -> Connection | None:
        """Spend the state of an authorization the provider (or the user) refused, and
        record ``reason`` on the connection it was for (returned; None if it is gone).

        A connection that is already CONNECTED keeps working with its tokens, so only
        one still waiting for (or needing) an authorization gets the reason as its
        ``status_message``.
        """
        store = self._access.store
        pending = await store.consume_oauth_state(state)
        if pending is None:
            raise OAuthError(
                "STATE_UNKNOWN",
                "this authorization is unknown or was already used; start connecting again",
            )
        connection = await store.get_connection(pending.connection_id)
        if connection is None:
            return None
        log.info("oauth_refused", connection_id=connection.id, user=pending.user)
        if connection.status is ConnectionStatus.CONNECTED:
            return connection
        connection.status_message = refusal_message(self._destination_name(connection), reason)
        connection.updated_at = utcnow()
        await store.save_connection(connection)
        return connection

    def _destination_name(self, connection: Connection) -> str:
        destination = self._access.destinations.get(connection.destination_type)
        return destination.display_name if destination else connection.destination_type


def _account_changed(destination: Destination, connection: Connection, account: str | None) -> str:
    name = destination.display_name
    was = f" ({connection.account})" if connection.account else ""
    now = f" ({account})" if account else ""
    return (
        f"this authorization is for a different {name} account{now} than the one connection "
        f"{connection.display_name!r} is connected to{was}: its exports would then send to "
        "another account. Nothing was changed. To connect the other account on purpose, an "
        "admin starts authorizeConnection again with allowAccountChange: true"
    )


REFUSAL_REASON_MAX = 200
"""Characters of the provider's reason kept in a connection's status message."""


def refusal_message(destination_name: str, reason: str) -> str:
    """What a connection whose authorization was refused says, and what to do next."""
    reason = " ".join(reason.split())
    if len(reason) > REFUSAL_REASON_MAX:
        reason = reason[: REFUSAL_REASON_MAX - 1] + "…"
    return (
        f"The authorization was refused at {destination_name} ({reason}) on "
        f"{utcnow():%Y-%m-%d %H:%M} UTC. Nothing was connected: to try again, an admin "
        f"starts authorizeConnection again and allows access on {destination_name}'s page "
        "(signed in to the account to connect, with the right to grant access)."
    )


class _NoCredentials:
    """What the code exchange runs with: there are no tokens yet."""

    async def tokens(self) -> OAuthTokens:
        raise DestinationError("no tokens yet: the authorization is being completed")

    async def refresh(self, stale: OAuthTokens) -> OAuthTokens:
        raise DestinationError("no tokens yet: the authorization is being completed")

    async def secrets(self) -> dict[str, Any]:
        return {}

    async def rejected(self, message: str) -> None:
        """Nothing is stored yet: the exchange's own error says it."""


# -- the browser's way back: GET /oauth/callback ---------------------------------------


async def oauth_callback(request: Request, flow: OAuthFlow, ui_url: str | None) -> Response:
    """``GET /oauth/callback?code=&state=`` (or ``?error=&error_description=&state=``).

    ``ui_url`` (``SEGPORT_UI_URL``): where to send the browser on; without it a
    short page says how it went.
    """
    params = request.query_params
    state, code, error = params.get("state"), params.get("code"), params.get("error")
    try:
        if not state:
            raise OAuthError(
                "MISSING_PARAMETER", "the callback needs the 'state' the provider sends back"
            )
        if error:
            # The provider's words are shown only for a state we issued, so nobody can
            # put text of their choosing on our page with a crafted link.
            description = params.get("error_description") or error
            refused = await flow.refuse(state, description)
            raise _Denied(refused, description)
        if not code:
            raise OAuthError(
                "MISSING_PARAMETER", "the callback needs the 'code' the provider sends back"
            )
        connection = await flow.complete(state, code, None)
    except _Denied as denied:
        refused = denied.connection
        if refused is None:
            message = f"the authorization was refused ({denied.description})"
        elif refused.status is not ConnectionStatus.CONNECTED:
            message = refused.status_message or denied.description
        else:
            message = (
                f"the authorization was refused ({denied.description}); "
                "the connection keeps the authorization it had"
            )
        return _failure(
            ui_url,
            "AUTHORIZATION_DENIED",
            message,
            refused.id if refused is not None else None,
        )
    except OAuthError as exc:
        log.info("oauth_callback_refused", code=exc.code)
        return _failure(ui_url, exc.code, exc.message, None)
    return _success(ui_url, connection)


class _Denied(Exception):
    def __init__(self, connection: Connection | None, description: str) -> None:
        super().__init__(description)
        self.connection = connection
        self.description = description


def _connection_ref(connection_id: str) -> str:
    # The same opaque Relay id the GraphQL API hands out.
    return to_global_id("Connection", connection_id)


def _with_query(url: str, params: Mapping[str, str]) -> str:
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def _success(ui_url: str | None, connection: Connection) -> Response:
    if ui_url:
        target = _with_query(
            ui_url, {"connection": _connection_ref(connection.id), "status": "connected"}
        )
        return RedirectResponse(target, status_code=303)
    account = connection.account or connection.display_name
    return _page(
        200,
        f"Connected to {account}",
        f"The connection {connection.display_name!r} is ready. You can close this window.",
    )


def _failure(ui_url: str | None, code: str, message: str, connection_id: str | None) -> Response:
    if ui_url:
        params = {"error": code, "message": message}
        if connection_id is not None:
            params["connection"] = _connection_ref(connection_id)
        return RedirectResponse(_with_query(ui_url, params), status_code=303)
    return _page(400, "The connection was not made", f"{message} ({code})")


def _page(status: int, title: str, text: str) -> HTMLResponse:
    body = (
        '<!doctype html><html><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title></head><body>"
        f"<h1>{escape(title)}</h1><p>{escape(text)}</p></body></html>"
    )
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


__all__ = ["OAuthError", "OAuthFlow", "oauth_callback", "pkce_pair", "refusal_message"]
