"""Hook specifications: every hook a segport plugin may implement.

Each hook is documented in docs/plugins.md; ``tests/test_docs.py`` fails when
one is not.
"""

from __future__ import annotations

import pluggy

from service.plugins.api import PROJECT_NAME, Destination
from service.plugins.demo import DemoFixture
from service.plugins.service_info import ServiceInfo

hookspec = pluggy.HookspecMarker(PROJECT_NAME)


@hookspec
def register_destinations() -> list[Destination]:  # type: ignore[empty-body]
    """Return the destination types this plugin provides."""


@hookspec
def register_demo_fixtures() -> list[DemoFixture]:  # type: ignore[empty-body]
    """Return what this plugin's destinations contribute to ``segport demo``."""


@hookspec
def startup(service: ServiceInfo) -> None:
    """Called once when a service or worker process starts, with what plugins may know of it."""
