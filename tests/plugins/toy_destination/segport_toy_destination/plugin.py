"""The toy destination's hooks; the entry point in pyproject.toml names this module."""

from __future__ import annotations

import os

from segport_toy_destination.destination import WebhookCollector
from service.plugins import Destination, hookimpl

SEGPORT_PLUGIN_API = "1.1"
"""The segport plugin API this plugin is built for; segport refuses it if it cannot serve it."""

COLLECTOR_URL_VARIABLE = "SEGPORT_TOY_WEBHOOK_URL"
"""Where the collector listens. A server-side setting: never taken from GraphQL input."""


@hookimpl
def register_destinations() -> list[Destination]:
    base_url = os.environ.get(COLLECTOR_URL_VARIABLE, "http://127.0.0.1:8765")
    return [WebhookCollector(base_url)]
