"""Builds the :class:`DestinationContext` a destination gets for one stored connection.

The one place that assembles what the service hands a plugin: the shared HTTP
client, the destination's (deployment-wide) rate limiter, the connection's
stored credentials and its non-secret settings, plus, while a run is going,
the export's settings and the run's reporter. The API (settings checks,
pickers) and the runs both open their contexts here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.connections.credentials import StoredCredentials
from service.connections.destinations import (
    DestinationAccess,
    DestinationNotInstalled,
    auth_kind_of,
)
from service.coordination.limiter import ReportingLimiter
from service.domain import Connection
from service.plugins.api import DestinationContext, RunReporter


async def destination_context(
    access: DestinationAccess,
    connection: Connection,
    *,
    export_settings: Mapping[str, Any] | None = None,
    reporter: RunReporter | None = None,
) -> DestinationContext:
    """The context ``connection``'s destination works in (DestinationNotInstalled without one).

    ``export_settings`` and ``reporter`` are given while a run sends an export.
    """
    destination = access.destination_of(connection)
    # A connection being created (an API key checked before the first save) is not in
    # the store yet; its credentials are read from the object itself until then.
    stored = await access.store.get_connection(connection.id)
    limiter = access.limiters.for_destination(destination)
    return DestinationContext(
        http=access.http,
        # A run's waits on a pause or the daily quota are said on the run itself.
        rate_limiter=limiter if reporter is None else ReportingLimiter(limiter, reporter),
        credentials=StoredCredentials(
            access, connection.id, destination, unsaved=connection if stored is None else None
        ),
        connection_settings=dict(connection.settings),
        export_settings=dict(export_settings or {}),
        reporter=reporter,
        auth_kind=auth_kind_of(destination, connection),
    )


__all__ = ["DestinationAccess", "DestinationNotInstalled", "auth_kind_of", "destination_context"]
