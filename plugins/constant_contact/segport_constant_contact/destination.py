"""The Constant Contact destination: what segport asks of a destination, for the V3 API."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from segport_constant_contact import fields, oauth
from segport_constant_contact.session import ConstantContactSession, envelope_size
from segport_constant_contact.settings import ConstantContactSettings
from segport_constant_contact.transport import ApiTransport
from service.plugins import (
    Destination,
    DestinationContext,
    DestinationError,
    DestinationLimits,
    InvalidCredentials,
    ListChoice,
    OAuthTokens,
    Rejection,
    SettingError,
    SettingSpec,
    is_uuid,
)

LISTS_PAGE_SIZE = 1000
"""The largest page ``GET /contact_lists`` serves."""

LIMITS = DestinationLimits(
    max_profiles_per_export=1_000_000,
    batch_max_records=40_000,
    # "Under 4 MB": read as the smaller of 4 * 10**6 and 4 * 2**20 bytes, and the service
    # keeps a body strictly below batch_max_bytes, so every body is at most 3,999,999
    # bytes. The limit is on the payload, and we send exactly the bytes we measured
    # (no re-encoding, no compression), so no further margin is needed.
    batch_max_bytes=4_000_000,
    requests_per_second=4,
    requests_per_day=10_000,
    max_concurrent_uploads=2,
)


class ConstantContact(Destination):
    """Constant Contact (V3 API): OAuth2 connection, JSON bulk import into one list."""

    key = "constant_contact"
    display_name = "Constant Contact"
    auth_kind = "oauth2"
    connection_settings: Sequence[SettingSpec] = ()
    export_settings: Sequence[SettingSpec] = (
        SettingSpec(
            "listId",
            "List ID",
            "uuid",
            required=True,
            description="The Constant Contact list the contacts are added to (a UUID, "
            "found in the list's URL).",
        ),
    )
    mapping_targets = fields.MAPPING_TARGETS
    limits = LIMITS

    def __init__(
        self,
        settings: ConstantContactSettings | Callable[[], ConstantContactSettings] | None = None,
    ) -> None:
        # Settings are read at use time (from the environment unless given), so the
        # same installed plugin can be pointed at a fake server or a proxy.
        self._settings_source = settings

    @property
    def settings(self) -> ConstantContactSettings:
        source = self._settings_source
        if source is None:
            return ConstantContactSettings()
        if isinstance(source, ConstantContactSettings):
            return source
        return source()

    # -- settings ------------------------------------------------------------------
    async def _lists(self, ctx: DestinationContext) -> list[dict[str, Any]]:
        transport = ApiTransport(ctx, self.settings)
        found: list[dict[str, Any]] = []
        page: str | None = "/contact_lists"
        params: dict[str, str | int] | None = {
            "limit": LISTS_PAGE_SIZE,
            "include_membership_count": "all",
        }
        while page:
            body = await transport.get_json(page, params)
            found.extend(item for item in body.get("lists", []) if isinstance(item, dict))
            next_link = (body.get("_links") or {}).get("next") or {}
            page = next_link.get("href") if isinstance(next_link, dict) else None
            params = None  # the next link carries its own query
        return found

    async def check_export_settings(
        self, ctx: DestinationContext, settings: Mapping[str, Any]
    ) -> list[SettingError]:
        list_id = settings.get("listId")
        if not isinstance(list_id, str) or not is_uuid(list_id):
            return []  # the local validation names that problem
        lists = await self._lists(ctx)
        if any(str(item.get("list_id", "")).lower() == list_id.lower() for item in lists):
            return []
        return [
            SettingError(
                "listId",
                f"list {list_id!r} does not exist in the connected Constant Contact account",
                "NOT_FOUND",
            )
        ]

    async def list_choices(self, ctx: DestinationContext, setting: str) -> list[ListChoice]:
        if setting != "listId":
            return []
        return [
            ListChoice(
                id=str(item["list_id"]),
                name=str(item.get("name", "")),
                member_count=item.get("membership_count"),
            )
            for item in await self._lists(ctx)
            if item.get("list_id") and not item.get("deleted_at")
        ]

    # -- mapping ---------------------------------------------------------------------
    def is_known_target(self, target: str) -> bool:
        return fields.is_known_target(target)

    def validate_mapping(self, targets: Sequence[str]) -> list[SettingError]:
        errors = super().validate_mapping(targets)
        custom = [t for t in targets if fields.is_custom_field(t)]
        if len(set(custom)) > fields.MAX_CUSTOM_FIELDS:
            errors.append(
                SettingError(
                    custom[fields.MAX_CUSTOM_FIELDS],
                    f"{len(set(custom))} custom fields mapped; Constant Contact accepts at "
                    f"most {fields.MAX_CUSTOM_FIELDS} per contact",
                    "TOO_MANY",
                )
            )
        return errors

    def build_record(self, values: Mapping[str, Any]) -> dict[str, Any] | Rejection:
        return fields.build_contact(values)

    def record_dedupe_key(self, record: Mapping[str, Any]) -> str:
        # Constant Contact matches contacts by e-mail, case-insensitively.
        return str(record["email"]).lower()

    def batch_envelope_size(self, export_settings: Mapping[str, Any]) -> int:
        return envelope_size(str(export_settings.get("listId", "")))

    # -- auth --------------------------------------------------------------------------
    def authorization_url(
        self, *, state: str, code_challenge: str, redirect_uri: str, settings: Mapping[str, Any]
    ) -> str:
        return oauth.authorization_url(
            self.settings, state=state, code_challenge=code_challenge, redirect_uri=redirect_uri
        )

    async def exchange_code(
        self, ctx: DestinationContext, *, code: str, code_verifier: str, redirect_uri: str
    ) -> OAuthTokens:
        return await oauth.exchange_code(
            ctx, self.settings, code=code, code_verifier=code_verifier, redirect_uri=redirect_uri
        )

    async def refresh_tokens(self, ctx: DestinationContext, tokens: OAuthTokens) -> OAuthTokens:
        return await oauth.refresh_tokens(ctx, self.settings, tokens)

    async def verify_connection(self, ctx: DestinationContext) -> str | None:
        try:
            summary = await ApiTransport(ctx, self.settings).get_json("/account/summary")
        except DestinationError as exc:
            raise InvalidCredentials(str(exc)) from None
        name = summary.get("organization_name") or summary.get("contact_email")
        return str(name) if name else None

    # -- uploads ---------------------------------------------------------------------
    def open_session(self, ctx: DestinationContext) -> ConstantContactSession:
        return ConstantContactSession(ctx, self.settings, self.limits)
