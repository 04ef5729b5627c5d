"""What a destination plugin contributes to ``segport demo`` (the ``register_demo_fixtures`` hook).

The demo is the embedded service with sample data and one connected export. It
knows no destination: a plugin offers a :class:`DemoFixture`, which starts what
its destination talks to during the demo (typically a fake of the destination's
servers) and says how the demo connection and export are set up.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from service.plugins.api import Destination
from service.plugins.service_info import ServiceInfo

DEMO_PROFILE_ATTRIBUTES = ("EmailAddress", "FirstName", "LastName", "City", "LoyaltyPoints")
"""The attributes of the demo's sample profiles: the sources a demo export can map."""


@dataclass(frozen=True, slots=True)
class DemoExport:
    """The demo export to the fixture's destination."""

    display_name: str
    settings: Mapping[str, Any]
    """The export settings (e.g. the list the contacts go to)."""
    field_mapping: Mapping[str, str]
    """Profile attribute (one of :data:`DEMO_PROFILE_ATTRIBUTES`) to mapping target, in order."""


@dataclass(frozen=True, slots=True)
class DemoDestination:
    """A started demo fixture: the destination to use and how the demo connects to it."""

    destination: Destination
    """The destination, configured explicitly to talk to the demo's servers; the demo uses
    it in place of the installed one with the same key."""
    server_name: str
    """Shown in the demo's banner, e.g. ``"Fake Acme"``."""
    server_url: str
    """Where the demo's server listens (shown in the banner)."""
    connection_name: str
    """The demo connection's display name."""
    export: DemoExport
    connection_settings: Mapping[str, Any] = field(default_factory=dict)
    """The demo connection's (non-secret) settings."""
    connection_secrets: Mapping[str, Any] = field(default_factory=dict)
    """The demo connection's secret settings (an API-key destination's demo key): the demo
    connects with them instead of the OAuth flow (plugin API 1.1)."""


class DemoFixture(abc.ABC):
    """A destination's part of the demo. Return instances from ``register_demo_fixtures``.

    An OAuth2 destination's demo connects through the OAuth2 flow, following the
    authorization URL without a browser: the fixture's server must approve at once and
    redirect to the callback (``ServiceInfo.oauth_callback_url``). An API-key
    destination's demo connects with ``DemoDestination.connection_secrets``, checked
    with ``verify_connection`` as a new connection is."""

    destination_key: str
    """The key of the destination this fixture sets up."""

    @abc.abstractmethod
    def start(self, service: ServiceInfo) -> AbstractContextManager[DemoDestination]:
        """Start what the destination talks to in the demo; stop it when the block ends."""
