"""What a destination declares about itself: its settings, mapping targets and limits.

These plain values are the bottom of the plugin platform: the default validation
(:mod:`service.plugins.validation`) checks settings and mappings against them, and
:class:`~service.plugins.api.Destination` declares them. Public through
:mod:`service.plugins`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SettingType = Literal["string", "uuid", "integer", "boolean", "url", "email"]


@dataclass(frozen=True, slots=True)
class SettingSpec:
    """One setting asked when creating a connection or an export."""

    name: str
    label: str
    type: SettingType = "string"
    required: bool = False
    secret: bool = False
    """Secret settings are stored encrypted with the credentials and never shown again."""
    description: str | None = None
    max_length: int | None = None


@dataclass(frozen=True, slots=True)
class MappingTarget:
    """A destination field that a profile attribute can be mapped to."""

    name: str
    label: str
    required: bool = False
    max_length: int | None = None
    kind: str = "string"
    """A hint for frontends: ``email``, ``string``, ``date``, ``integer``, ``phone``, ``custom``."""


@dataclass(frozen=True, slots=True)
class DestinationLimits:
    """What the destination allows; the service enforces each of these."""

    max_profiles_per_export: int | None = None
    batch_max_records: int = 1000
    """Records per upload request."""
    batch_max_bytes: int = 1_000_000
    """Encoded bytes per upload request, envelope included (strictly below this)."""
    requests_per_second: float | None = None
    """Shared by every process of the deployment."""
    requests_per_day: int | None = None
    """Shared by every process of the deployment; the day resets at 00:00 UTC."""
    max_concurrent_uploads: int = 2
    """Upload requests of one run in flight at once."""
    max_requests_in_flight: int | None = None
    """Requests in flight at once per scope (e.g. per API key), shared by every process of
    the deployment: what ``RateLimiter.in_flight`` enforces (plugin API 1.1). None:
    no cap beyond ``max_concurrent_uploads``."""
    removal_batch_max_records: int = 1000
    """List members passed to one call of ``DestinationSession.remove_list_members``."""


@dataclass(frozen=True, slots=True)
class SettingError:
    """A problem with one setting or one mapping; becomes a GraphQL ``userErrors`` entry."""

    field: str
    message: str
    code: str = "INVALID"
