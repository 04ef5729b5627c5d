"""What a run of an export would do now: the answer of ``previewExport``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PREVIEW_SAMPLE_SIZE = 20
"""Records shown, the first ones a run would send (in profile-id order)."""


@dataclass(slots=True)
class PreviewedContact:
    profile_id: str
    contact: Any
    """The record exactly as it would be sent (its encoded form, read back as JSON)."""


@dataclass(slots=True)
class SyncPreview:
    """A run's numbers before it runs: to_add + to_update is what it would send."""

    to_add: int = 0
    to_update: int = 0
    unchanged: int = 0
    to_remove: int = 0
    skipped_invalid: int = 0
    skipped_duplicate: int = 0
    field_warnings: int = 0
    sample: list[PreviewedContact] = field(default_factory=list)
    note: str | None = None
    """Why the run would send everything (its ledger would be reset), when it would."""
    outside_export: int = 0
    """A whole-list preview: members of the list outside the export it would also remove
    (counted in ``to_remove`` too)."""
    whole_list_confirmation: str | None = None
    """A whole-list preview: what ``runExport`` passes to remove them."""
