"""The Constant Contact destination: what segport asks of a destination, for the V3 API.

Every call, field and limit it relies on is in docs/constant-contact.md, with its source.
It implements plugin API 1.1's optional methods (the plugin README, "Plugin API 1.1"):
field warnings, the account's custom fields as targets and a mapping checked against
them, the account's identity and whether the server's configuration can connect.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from segport_constant_contact import account, fields, oauth
from segport_constant_contact.session import ConstantContactSession, envelope_size
from segport_constant_contact.settings import ConstantContactSettings
from segport_constant_contact.throttling import UnexplainedStreak
from segport_constant_contact.transport import ApiTransport
from service.plugins import (
    Destination,
    DestinationContext,
    DestinationError,
    DestinationLimits,
    FieldWarning,
    InvalidCredentials,
    ListChoice,
    MappingTarget,
    OAuthTokens,
    Rejection,
    SettingError,
    SettingSpec,
    TransientDestinationError,
    is_uuid,
)

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
    # One removal call exports the list once to find contact ids, then removes 500 per
    # request: 10,000 leavers cost 20 removals and a handful of other requests.
    removal_batch_max_records=10_000,
)


class ConstantContact(Destination):
    """Constant Contact (V3 API): OAuth2 connection, JSON bulk import into one list."""

    key = "constant_contact"
    display_name = "Constant Contact"
    auth_kind = "oauth2"
    can_remove_list_members = True
    can_read_list_standing = True
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
        # The rate limits are the application's, so a streak of unexplained 429s is
        # counted across every connection and run of this process.
        self._streak = UnexplainedStreak()

    @property
    def settings(self) -> ConstantContactSettings:
        source = self._settings_source
        if source is None:
            return ConstantContactSettings()
        if isinstance(source, ConstantContactSettings):
            return source
        return source()

    def _transport(self, ctx: DestinationContext) -> ApiTransport:
        return ApiTransport(ctx, self.settings, streak=self._streak)

    # -- settings ------------------------------------------------------------------
    def configuration_problem(self) -> str | None:
        return self.settings.missing_configuration()

    async def check_export_settings(
        self, ctx: DestinationContext, settings: Mapping[str, Any]
    ) -> list[SettingError]:
        list_id = settings.get("listId")
        if not isinstance(list_id, str) or not is_uuid(list_id):
            return []  # the local validation names that problem
        lists = await account.account_lists(self._transport(ctx))
        found = next((item for item in lists if item.list_id.lower() == list_id.lower()), None)
        if found is None:
            return [
                SettingError(
                    "listId",
                    f"list {list_id!r} does not exist in the connected Constant Contact account",
                    "NOT_FOUND",
                )
            ]
        if found.deleted:
            return [
                SettingError(
                    "listId",
                    f"list {found.name!r} ({list_id}) was deleted in Constant Contact; "
                    "choose another list",
                    "DELETED",
                )
            ]
        return []

    async def list_choices(self, ctx: DestinationContext, setting: str) -> list[ListChoice]:
        if setting != "listId":
            return []
        return [
            ListChoice(id=item.list_id, name=item.name, member_count=item.membership_count)
            for item in await account.account_lists(self._transport(ctx))
            if not item.deleted
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

    async def account_mapping_targets(self, ctx: DestinationContext) -> list[MappingTarget]:
        """The standard targets and the connected account's custom fields (``cf:<name>``),
        read with ``GET /contact_custom_fields``: what a mapping picker offers."""
        custom = await account.account_custom_fields(self._transport(ctx))
        return [*self.mapping_targets, *account.custom_field_targets(custom)]

    async def check_mapping(
        self, ctx: DestinationContext, targets: Sequence[str]
    ) -> list[SettingError]:
        """Remote checks of a mapping: each ``cf:`` target must be a custom field of the
        connected account (Constant Contact refuses an import naming another)."""
        if not any(fields.is_custom_field(t) for t in targets):
            return []
        custom = await account.account_custom_fields(self._transport(ctx))
        return account.check_custom_fields(targets, custom)

    def build_record(self, values: Mapping[str, Any]) -> dict[str, Any] | Rejection:
        return fields.build_contact(values)[0]

    def build_record_with_warnings(
        self, values: Mapping[str, Any]
    ) -> tuple[dict[str, Any] | Rejection, Sequence[FieldWarning]]:
        """:meth:`build_record`, with the optional values it left out (or shortened) and
        why: what the service should count and sample as field warnings, with the profile id."""
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

    def account_identity(self, tokens: OAuthTokens) -> str | None:
        account_id = tokens.extra.get(oauth.ACCOUNT_ID_KEY)
        return str(account_id) if account_id else None

    async def verify_connection(self, ctx: DestinationContext) -> str | None:
        try:
            summary = await self._transport(ctx).get_json("/account/summary")
        except TransientDestinationError:
            raise  # worth trying again: not a verdict on the credentials
        except DestinationError as exc:
            raise InvalidCredentials(str(exc)) from None
        name = summary.get("organization_name") or summary.get("contact_email")
        return str(name) if name else None

    # -- uploads ---------------------------------------------------------------------
    def open_session(self, ctx: DestinationContext) -> ConstantContactSession:
        return ConstantContactSession(ctx, self.settings, self.limits, self._streak)
