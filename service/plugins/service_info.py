"""What a plugin is told about the service it runs in (the ``startup`` hook's argument)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

ServiceMode = Literal["embedded", "distributed"]


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    """The few facts about the running service a plugin may rely on.

    Built by the service from its settings; the settings themselves are not part
    of the plugin API."""

    public_url: str
    """Where users reach the service (``SEGPORT_PUBLIC_URL``), without a trailing slash."""
    oauth_callback_url: str
    """The OAuth redirect URI destinations send the browser back to."""
    mode: ServiceMode
    """``embedded`` (SQLite, in-process jobs) or ``distributed`` (MongoDB, workers)."""
    data_dir: Path | None
    """The folder the embedded service keeps its files in; None in distributed mode."""
