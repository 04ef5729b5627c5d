"""The rules of an export's sync mode that the API checks when an export is saved."""

from __future__ import annotations

from service import domain
from service.api.errors import UserError, user_error
from service.plugins.api import Destination

SYNC_MODE_DEFAULT = (
    f"Default: {domain.DEFAULT_SYNC_MODE.value} (send only what is new or changed since the "
    "destination last confirmed it)."
)


def sync_mode_errors(export: domain.Export, destination: Destination) -> list[UserError]:
    """A mirror needs a destination that can take members off a list."""
    if export.sync_mode is domain.SyncMode.MIRROR and not destination.can_remove_list_members:
        return [
            user_error(
                "syncMode",
                f"{destination.display_name} cannot remove list members, so an export to it "
                "cannot be a MIRROR; choose SEND_CHANGES or SEND_ALL",
                "MIRROR_UNSUPPORTED",
            )
        ]
    return []
