"""Field warnings: optional values a destination left out of records it still sends.

:meth:`~service.plugins.api.Destination.build_record_with_warnings` returns them beside
each record; the mapper keeps those of the last profile it mapped, and the assembler
counts them (``RunCounts.field_warnings``) and samples them as run errors. A warning is
counted only for a profile whose record is sent: a profile skipped as invalid or as a
duplicate has its own reason, and its left-out values change nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from service.domain import RunError
from service.plugins.api import FieldWarning


def warning_errors(profile_id: str, warnings: Sequence[FieldWarning]) -> list[RunError]:
    """The run errors that sample ``warnings`` of one profile (no values: RunError cleans
    the reason of quoted values and addresses whatever the destination wrote)."""
    return [
        RunError(code=w.code, message=w.reason, profile_id=profile_id, field=w.field)
        for w in warnings
    ]
