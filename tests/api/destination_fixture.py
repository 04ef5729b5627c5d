"""A tiny destination plugin for the API tests, registered through the real hook.

Export setting ``listId`` (UUID, required); mapping targets ``email``
(required, at most 50) and ``first_name`` / ``last_name``; one secret
connection setting ``apiToken`` (optional, so connections can be made without
one). Its remote check knows two special list ids: one that "does not exist"
at the destination, and one that makes the plugin crash (to see crashes
masked).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.plugins import (
    Destination,
    DestinationContext,
    DestinationSession,
    MappingTarget,
    Rejection,
    SettingError,
    SettingSpec,
    hookimpl,
)

KEY = "test_dest"
MISSING_LIST_ID = "00000000-0000-4000-8000-000000000404"
CRASHING_LIST_ID = "00000000-0000-4000-8000-000000000500"
CRASH_DETAIL = "plugin internals exploded at /srv/secret/path"


class TestDestination(Destination):
    key = KEY
    display_name = "Test destination"
    auth_kind = "none"
    connection_settings = (
        SettingSpec("apiToken", "API token", required=False, secret=True),
        SettingSpec("region", "Region", required=False),
    )
    export_settings = (SettingSpec("listId", "List ID", type="uuid", required=True),)
    mapping_targets = (
        MappingTarget("email", "E-mail", required=True, max_length=50, kind="email"),
        MappingTarget("first_name", "First name"),
        MappingTarget("last_name", "Last name"),
    )

    async def check_export_settings(
        self, ctx: DestinationContext, settings: Mapping[str, Any]
    ) -> list[SettingError]:
        if settings.get("listId") == CRASHING_LIST_ID:
            raise RuntimeError(CRASH_DETAIL)
        if settings.get("listId") == MISSING_LIST_ID:
            return [SettingError("listId", "no such list in the account", "LIST_NOT_FOUND")]
        return []

    def build_record(self, values: Mapping[str, Any]) -> dict[str, Any] | Rejection:
        return dict(values)

    def open_session(self, ctx: DestinationContext) -> DestinationSession:
        raise NotImplementedError("the API tests never run exports")


@hookimpl
def register_destinations() -> list[Destination]:
    return [TestDestination()]
