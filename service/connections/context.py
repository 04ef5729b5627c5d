"""Builds the :class:`DestinationContext` a destination gets for one stored connection.

The one place that assembles what the service hands a plugin: the shared HTTP
client, the destination's (deployment-wide) rate limiter, the connection's
stored credentials and its non-secret settings, plus, while a run is going,
the export's settings and the run's reporter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from service.connections.credentials import StoredCredentials
from service.domain import Connection
from service.plugins.api import Destination, DestinationContext, DestinationError, RunReporter

if TYPE_CHECKING:
    from service.core import Services


class DestinationNotInstalled(DestinationError):
    """A stored connection names a destination type no installed plugin provides."""

    def __init__(self, destination_type: str) -> None:
        super().__init__(
            f"destination type {destination_type!r} is not installed in this deployment"
        )
        self.destination_type = destination_type


def destination_of(services: Services, connection: Connection) -> Destination:
    """The installed destination of ``connection``, or :class:`DestinationNotInstalled`."""
    destination = services.destinations.get(connection.destination_type)
    if destination is None:
        raise DestinationNotInstalled(connection.destination_type)
    return destination


async def destination_context(
    services: Services,
    connection: Connection,
    *,
    export_settings: Mapping[str, Any] | None = None,
    reporter: RunReporter | None = None,
) -> DestinationContext:
    destination = destination_of(services, connection)
    # A connection being created (an API key checked before the first save) is not in
    # the store yet; its credentials are read from the object itself until then.
    stored = await services.store.get_connection(connection.id)
    return DestinationContext(
        http=services.http,
        rate_limiter=services.limiters.for_destination(destination),
        credentials=StoredCredentials(
            services, connection.id, destination, unsaved=connection if stored is None else None
        ),
        connection_settings=dict(connection.settings),
        export_settings=dict(export_settings or {}),
        reporter=reporter,
    )


__all__ = ["DestinationNotInstalled", "destination_context", "destination_of"]
