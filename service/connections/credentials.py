"""A connection's stored credentials, as the :class:`CredentialSource` a destination uses.

A connection's ``credentials`` field is one Fernet token (see
:mod:`service.access.crypto`) holding a JSON object ``{"tokens": {...} | null,
"secrets": {...}}``: the OAuth tokens and the secret connection settings (an
API key). :func:`seal_credentials` and :func:`open_credentials` are the only
code that knows that shape; anything that stores credentials goes through them.

Credentials that no configured key decrypts (a key rotation half done) fail
with :class:`CredentialsUndecryptable`, and the connection is marked
NEEDS_REAUTHORIZATION with a status message saying how to recover.

Token refresh is serialized per connection across every process (a lock,
then the stored tokens are re-read), because Constant Contact's rotating
refresh tokens are spent by the first refresh: a second, concurrent refresh
with the same token would lose the connection. Nothing here logs a token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog

from service.access.crypto import CredentialCipher, CredentialDecryptionError
from service.connections.destinations import DestinationAccess
from service.domain import Connection, ConnectionStatus, utcnow
from service.plugins.api import (
    AuthorizationLost,
    Destination,
    DestinationContext,
    DestinationError,
    OAuthTokens,
)

log = structlog.get_logger(__name__)

REFRESH_AHEAD = timedelta(seconds=60)
"""An access token that expires within this is refreshed before use."""
REFRESH_LOCK_LEASE = 90.0
"""Seconds the refresh lock lives if its holder dies (longer than one token request)."""

UNDECRYPTABLE_MESSAGE = (
    "Its stored credentials cannot be decrypted with the configured keys "
    '(SEGPORT_ENCRYPTION_KEY): restore the previous key (as a second key, "NEW,OLD") '
    "and run `segport rotate-keys`, or re-authorize the connection."
)
"""The status message of a connection whose credentials no configured key opens (a key
rotation half done: the old key removed before ``segport rotate-keys`` ran)."""


class CredentialsUndecryptable(AuthorizationLost):
    """A connection's stored credentials cannot be decrypted with any configured key.

    An :class:`AuthorizationLost`, so a run fails with this message (naming the
    connection and what to do) and the API reports NEEDS_REAUTHORIZATION, as for
    any connection that lost its authorization.
    """

    def __init__(self, connection: Connection) -> None:
        super().__init__(f"Connection {connection.display_name!r}: {UNDECRYPTABLE_MESSAGE}")
        self.connection_id = connection.id


@dataclass(slots=True)
class CredentialBundle:
    """What one connection's ``credentials`` field holds, decrypted."""

    tokens: OAuthTokens | None = None
    secrets: dict[str, Any] = field(default_factory=dict)


def _tokens_to_json(tokens: OAuthTokens) -> dict[str, Any]:
    return {
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "expires_at": tokens.expires_at.isoformat() if tokens.expires_at else None,
        "scope": tokens.scope,
        "extra": dict(tokens.extra),
    }


def _tokens_from_json(data: Mapping[str, Any]) -> OAuthTokens:
    expires_at = data.get("expires_at")
    return OAuthTokens(
        access_token=str(data["access_token"]),
        refresh_token=data.get("refresh_token"),
        expires_at=datetime.fromisoformat(expires_at) if expires_at else None,
        scope=data.get("scope"),
        extra=dict(data.get("extra") or {}),
    )


def seal_credentials(
    cipher: CredentialCipher,
    *,
    tokens: OAuthTokens | None = None,
    secrets: Mapping[str, Any] | None = None,
) -> str:
    """Encrypt tokens and secret settings into a connection's ``credentials`` value."""
    return cipher.encrypt(
        {
            "tokens": _tokens_to_json(tokens) if tokens is not None else None,
            "secrets": dict(secrets or {}),
        }
    )


def open_credentials(cipher: CredentialCipher, sealed: str | None) -> CredentialBundle:
    """Decrypt a connection's ``credentials`` value (None gives an empty bundle)."""
    if not sealed:
        return CredentialBundle()
    data = cipher.decrypt(sealed)
    raw_tokens = data.get("tokens")
    return CredentialBundle(
        tokens=_tokens_from_json(raw_tokens) if isinstance(raw_tokens, Mapping) else None,
        secrets=dict(data.get("secrets") or {}),
    )


class StoredCredentials:
    """The :class:`~service.plugins.api.CredentialSource` of one stored connection."""

    def __init__(
        self,
        access: DestinationAccess,
        connection_id: str,
        destination: Destination,
        *,
        unsaved: Connection | None = None,
    ) -> None:
        """``unsaved``: the connection as being created, used while it is not stored yet
        (an API-key connection is verified before its first save)."""
        self._access = access
        self._connection_id = connection_id
        self._destination = destination
        self._unsaved = unsaved
        self._tokens: OAuthTokens | None = None

    async def _load(self) -> tuple[Connection, CredentialBundle]:
        connection = await self._access.store.get_connection(self._connection_id)
        if connection is None:
            connection = self._unsaved
        if connection is None:
            raise DestinationError(f"connection {self._connection_id!r} no longer exists")
        try:
            return connection, open_credentials(self._access.cipher, connection.credentials)
        except CredentialDecryptionError:
            await self._mark_undecryptable(connection)
            raise CredentialsUndecryptable(connection) from None

    def _not_authorized(self, connection: Connection) -> AuthorizationLost:
        return AuthorizationLost(
            f"connection {connection.display_name!r} is not authorized with "
            f"{self._destination.display_name}; an admin must connect it"
        )

    async def tokens(self) -> OAuthTokens:
        if self._tokens is None:
            connection, bundle = await self._load()
            if bundle.tokens is None:
                raise self._not_authorized(connection)
            self._tokens = bundle.tokens
        expires_at = self._tokens.expires_at
        if expires_at is not None and expires_at - utcnow() <= REFRESH_AHEAD:
            return await self.refresh(self._tokens)
        return self._tokens

    async def refresh(self, stale: OAuthTokens) -> OAuthTokens:
        locks = self._access.locks
        async with locks.lock(f"refresh:{self._connection_id}", REFRESH_LOCK_LEASE):
            connection, bundle = await self._load()
            stored = bundle.tokens
            if stored is None:
                raise self._not_authorized(connection)
            if stored.access_token != stale.access_token:
                # Another task or process refreshed while we waited for the lock.
                self._tokens = stored
                return stored
            ctx = self._access.bare_context(self._destination, connection, self)
            try:
                fresh = await self._destination.refresh_tokens(ctx, stored)
            except AuthorizationLost as exc:
                await self._mark_needs_reauthorization(str(exc))
                raise
            if fresh.refresh_token is None:
                # Long-lived refresh tokens are not always repeated in the answer.
                fresh.refresh_token = stored.refresh_token
            await self._save_tokens(fresh, bundle.secrets)
            self._tokens = fresh
            log.info("oauth_tokens_refreshed", connection_id=self._connection_id)
            return fresh

    async def secrets(self) -> dict[str, Any]:
        _, bundle = await self._load()
        return bundle.secrets

    async def rejected(self, message: str) -> None:
        """The destination refuses the stored credentials (an API key that stopped working)."""
        if self._unsaved is None:
            await self._mark_needs_reauthorization(message)

    async def _save_tokens(self, tokens: OAuthTokens, secrets: dict[str, Any]) -> None:
        sealed = seal_credentials(self._access.cipher, tokens=tokens, secrets=secrets)
        # Re-read right before writing so an edit made during the token request survives.
        connection = await self._access.store.get_connection(self._connection_id)
        if connection is None:
            if self._unsaved is None:
                # Removed meanwhile: never bring a removed connection back.
                raise DestinationError(f"connection {self._connection_id!r} no longer exists")
            self._unsaved.credentials = sealed  # its creator saves it
            return
        connection.credentials = sealed
        connection.updated_at = utcnow()
        await self._access.store.save_connection(connection)

    async def _mark_undecryptable(self, connection: Connection) -> None:
        """Say so on the stored connection, once (it showed CONNECTED until now)."""
        if self._unsaved is connection or (
            connection.status is ConnectionStatus.NEEDS_REAUTHORIZATION
            and connection.status_message == UNDECRYPTABLE_MESSAGE
        ):
            return
        log.error("credentials_undecryptable", connection_id=connection.id)
        await self._mark_needs_reauthorization(UNDECRYPTABLE_MESSAGE)

    async def _mark_needs_reauthorization(self, message: str) -> None:
        connection = await self._access.store.get_connection(self._connection_id)
        if connection is None:
            return
        connection.status = ConnectionStatus.NEEDS_REAUTHORIZATION
        connection.status_message = message
        connection.updated_at = utcnow()
        await self._access.store.save_connection(connection)
        log.warning(
            "connection_needs_reauthorization",
            connection_id=self._connection_id,
            reason=message,
        )


class PendingCredentials:
    """Tokens just obtained and not yet stored (used while completing an authorization)."""

    def __init__(
        self, destination: Destination, tokens: OAuthTokens, secrets: Mapping[str, Any]
    ) -> None:
        self._destination = destination
        self.current = tokens
        self._secrets = dict(secrets)
        self.ctx: DestinationContext | None = None
        """Set by the caller: the context in which a refresh would run."""

    async def tokens(self) -> OAuthTokens:
        return self.current

    async def refresh(self, stale: OAuthTokens) -> OAuthTokens:
        if self.ctx is None:
            raise AuthorizationLost("the new tokens cannot be refreshed here")
        if stale.access_token == self.current.access_token:
            self.current = await self._destination.refresh_tokens(self.ctx, self.current)
        return self.current

    async def secrets(self) -> dict[str, Any]:
        return dict(self._secrets)

    async def rejected(self, message: str) -> None:
        """Nothing is stored yet: the caller's error says it."""


__all__ = [
    "UNDECRYPTABLE_MESSAGE",
    "CredentialBundle",
    "CredentialsUndecryptable",
    "PendingCredentials",
    "StoredCredentials",
    "open_credentials",
    "seal_credentials",
]
