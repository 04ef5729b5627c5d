"""Hook specifications: every hook a segport plugin may implement.

Each hook is documented in docs/plugins.md; ``tests/test_docs.py`` fails when
one is not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

from service.plugins.api import PROJECT_NAME

if TYPE_CHECKING:
    from service.plugins.api import Destination

hookspec = pluggy.HookspecMarker(PROJECT_NAME)


@hookspec
def register_destinations() -> list[Destination]:  # type: ignore[empty-body]
    """Return the destination types this plugin provides."""


@hookspec
def startup(settings: object) -> None:
    """Called once when a service or worker process starts, with the service settings."""
