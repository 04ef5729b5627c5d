"""What talking to a destination on behalf of a stored connection needs, in one object.

:class:`DestinationAccess` bundles the installed destinations, the store, the
credential cipher, the shared HTTP client, the per-destination rate limiters
and the named locks. The wiring (:mod:`service.core`) builds it once from its
parts; the connections layer (OAuth, stored credentials, destination
contexts) takes it instead of the whole container, so it depends only on the
layers below it.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from service.access.crypto import CredentialCipher
from service.coordination.limiter import RateLimiters
from service.coordination.locks import Locks
from service.domain import Connection
from service.plugins.api import (
    AuthKind,
    CredentialSource,
    Destination,
    DestinationContext,
    DestinationError,
)
from service.plugins.manager import DestinationRegistry
from service.store.base import Store


class DestinationNotInstalled(DestinationError):
    """A stored connection names a destination type no installed plugin provides."""

    def __init__(self, destination_type: str) -> None:
        super().__init__(
            f"destination type {destination_type!r} is not installed in this deployment"
        )
        self.destination_type = destination_type


def auth_kind_of(destination: Destination, connection: Connection) -> AuthKind:
    """How ``connection`` connects to ``destination``: the kind it recorded when the
    destination still offers it, else (connections stored before kinds were recorded) the
    destination's first way to connect."""
    for kind in destination.auth_kinds:
        if kind == connection.auth_kind:
            return kind
    return destination.auth_kind


def reconnect_advice(destination: Destination | None, connection: Connection) -> str:
    """What an admin does for ``connection`` once it needs re-authorization, by the way it
    connects (without its destination installed: authorize it)."""
    kind = auth_kind_of(destination, connection) if destination is not None else "oauth2"
    if kind == "api_key":
        return "an admin must replace its key (replaceConnectionSecrets)"
    return "an admin must authorize it again"


@dataclass(frozen=True, slots=True)
class DestinationAccess:
    """The parts a connection's destination is reached through."""

    destinations: DestinationRegistry
    store: Store
    cipher: CredentialCipher
    http: httpx.AsyncClient
    """The process's one client: every destination request is counted by its hook."""
    limiters: RateLimiters
    locks: Locks
    """Serialize token refreshes (and key rotation) per connection across processes."""

    def destination_of(self, connection: Connection) -> Destination:
        """The installed destination of ``connection``, or :class:`DestinationNotInstalled`."""
        destination = self.destinations.get(connection.destination_type)
        if destination is None:
            raise DestinationNotInstalled(connection.destination_type)
        return destination

    def bare_context(
        self, destination: Destination, connection: Connection, credentials: CredentialSource
    ) -> DestinationContext:
        """A context with ``credentials`` and the connection's settings, outside any run."""
        return DestinationContext(
            http=self.http,
            rate_limiter=self.limiters.for_destination(destination),
            credentials=credentials,
            connection_settings=dict(connection.settings),
            auth_kind=auth_kind_of(destination, connection),
        )


__all__ = ["DestinationAccess", "DestinationNotInstalled", "auth_kind_of", "reconnect_advice"]
