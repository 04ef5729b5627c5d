"""The Mailchimp destination: connections by API key or OAuth2, audiences, merge fields,
batch subscribe.

Every call, field and limit it relies on is described in the plugin's README, with the
points taken on trust marked as such. Beyond the plugin API it offers, as the Constant
Contact plugin does, :meth:`Mailchimp.account_mapping_targets` (``email_address`` and the
audience's merge fields, for pickers) and :meth:`Mailchimp.check_mapping` (save-time
validation against the audience).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from segport_mailchimp import account, fields, oauth
from segport_mailchimp.keys import KEY_SHAPE, data_center
from segport_mailchimp.session import MailchimpSession, tags_of
from segport_mailchimp.settings import MailchimpSettings
from segport_mailchimp.transport import ApiTransport
from service.plugins import (
    AuthKind,
    AuthorizationLost,
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
)

MAX_MEMBERS_PER_CALL = 500
MAX_CONNECTIONS_PER_KEY = 10
NEW_MEMBER_STATUSES = ("subscribed", "pending", "transactional")
"""What an export may give new members. No default: subscribing people is the admin's
explicit choice."""
STATUS_CHOICES = (
    ("subscribed", "Subscribed (only with the people's consent)"),
    ("pending", "Pending (Mailchimp asks each new member to confirm)"),
    ("transactional", "Transactional (no marketing e-mail)"),
)
MAX_TAGS = 50
TAG_MAX_LENGTH = 100
ENVELOPE_BYTES = 64
PER_MEMBER_EXTRA_BYTES = 48
"""``status_if_new`` and punctuation the session adds to each member (tags counted apart)."""

LIMITS = DestinationLimits(
    batch_max_records=MAX_MEMBERS_PER_CALL,
    # Mailchimp publishes no body limit for batch subscribe; 500 members of ordinary size
    # are far below this bound, which only keeps a run of huge records sane.
    batch_max_bytes=8_000_000,
    requests_per_second=None,  # none documented (reported: none beyond the cap)
    max_concurrent_uploads=MAX_CONNECTIONS_PER_KEY,
    max_requests_in_flight=MAX_CONNECTIONS_PER_KEY,
    removal_batch_max_records=MAX_MEMBERS_PER_CALL,
)


API_KEY_SETTING = SettingSpec(
    "apiKey",
    "API key",
    required=True,
    secret=True,
    description="A Mailchimp API key (Account, Extras, API keys): " + KEY_SHAPE + ". "
    "Checked when saved, stored encrypted, never shown again.",
)


class Mailchimp(Destination):
    """Mailchimp (Marketing API 3.0): connected by API key or, where an app is registered, by
    OAuth2 (no refresh: tokens do not expire; the data center read from the metadata call);
    batch subscribe into one audience."""

    key = "mailchimp"
    display_name = "Mailchimp"
    auth_kinds: tuple[AuthKind, ...] = ("api_key", "oauth2")
    connection_settings: Sequence[SettingSpec] = (API_KEY_SETTING,)
    """Every connection setting of any way to connect: only API-key connections have one."""
    export_settings: Sequence[SettingSpec] = (
        SettingSpec(
            "listId",
            "Audience",
            required=True,
            max_length=64,
            description="The audience (list) the members go to: pick one from "
            "exportSettingChoices.",
        ),
        SettingSpec(
            "statusIfNew",
            "Status of new members",
            required=True,
            description="What a new member becomes: subscribed (only with their consent), "
            "pending (Mailchimp sends a confirmation e-mail) or transactional. Existing "
            "members keep their status.",
        ),
        SettingSpec(
            "tags",
            "Tags",
            max_length=2000,
            description="Optional tags given to every member sent, separated by commas.",
        ),
    )
    mapping_targets = fields.MAPPING_TARGETS
    limits = LIMITS
    can_remove_list_members = True

    def __init__(
        self, settings: MailchimpSettings | Callable[[], MailchimpSettings] | None = None
    ) -> None:
        # Read at use time (from the environment unless given), so one installed plugin
        # can be pointed at the fake or a proxy.
        self._settings_source = settings

    @property
    def settings(self) -> MailchimpSettings:
        source = self._settings_source
        if source is None:
            return MailchimpSettings()
        if isinstance(source, MailchimpSettings):
            return source
        return source()

    def _transport(self, ctx: DestinationContext) -> ApiTransport:
        return ApiTransport(ctx, self.settings, oauth=uses_oauth(ctx))

    # -- settings ------------------------------------------------------------------
    def connection_settings_for(self, auth_kind: AuthKind) -> Sequence[SettingSpec]:
        # An OAuth2 connection is asked for nothing: the admin authorizes on Mailchimp.
        return self.connection_settings if auth_kind == "api_key" else ()

    def validate_connection_settings_for(
        self, auth_kind: AuthKind, settings: Mapping[str, Any]
    ) -> list[SettingError]:
        if auth_kind == "api_key":
            return self.validate_connection_settings(settings)
        return super().validate_connection_settings_for(auth_kind, settings)

    def validate_connection_settings(self, settings: Mapping[str, Any]) -> list[SettingError]:
        """The settings of an API-key connection (the first way to connect)."""
        errors = super().validate_connection_settings(settings)
        key = settings.get("apiKey")
        if isinstance(key, str) and key.strip() and data_center(key) is None:
            # Never echo the key: it is a secret even when mistyped.
            errors.append(
                SettingError(
                    "apiKey",
                    f"this is not a Mailchimp API key: a key is {KEY_SHAPE}",
                    "INVALID",
                )
            )
        return errors

    def validate_export_settings(self, settings: Mapping[str, Any]) -> list[SettingError]:
        errors = super().validate_export_settings(settings)
        status = settings.get("statusIfNew")
        if isinstance(status, str) and status and status not in NEW_MEMBER_STATUSES:
            errors.append(
                SettingError(
                    "statusIfNew",
                    f"{status!r} is not a status for new members; choose one of "
                    f"{', '.join(NEW_MEMBER_STATUSES)}",
                    "INVALID",
                )
            )
        tags = tags_of(settings.get("tags"))
        if len(tags) > MAX_TAGS:
            errors.append(SettingError("tags", f"at most {MAX_TAGS} tags, not {len(tags)}"))
        errors.extend(
            SettingError("tags", f"tag {tag[:20]!r}… is longer than {TAG_MAX_LENGTH} characters")
            for tag in tags
            if len(tag) > TAG_MAX_LENGTH
        )
        return errors

    async def check_export_settings(
        self, ctx: DestinationContext, settings: Mapping[str, Any]
    ) -> list[SettingError]:
        list_id = settings.get("listId")
        if not isinstance(list_id, str) or not list_id:
            return []
        found = await account.audiences(self._transport(ctx))
        if not any(a.list_id == list_id for a in found):
            names = ", ".join(f"{a.name} ({a.list_id})" for a in found) or "none"
            return [
                SettingError(
                    "listId",
                    f"audience {list_id!r} does not exist in the connected Mailchimp account "
                    f"(its audiences: {names})",
                    "NOT_FOUND",
                )
            ]
        return []

    async def list_choices(self, ctx: DestinationContext, setting: str) -> list[ListChoice]:
        if setting == "statusIfNew":
            return [ListChoice(id=status, name=label) for status, label in STATUS_CHOICES]
        if setting != "listId":
            return []
        return [
            ListChoice(id=a.list_id, name=a.name, member_count=a.member_count)
            for a in await account.audiences(self._transport(ctx))
        ]

    # -- mapping ---------------------------------------------------------------------
    def is_known_target(self, target: str) -> bool:
        return target == "email_address" or fields.is_merge_tag(target)

    async def account_mapping_targets(self, ctx: DestinationContext) -> list[MappingTarget]:
        """``email_address`` and the export's audience's merge fields (with their types and
        required flags), read with ``GET /lists/{id}/merge-fields``; only
        ``email_address`` while no audience is chosen."""
        list_id = ctx.export_settings.get("listId")
        if not isinstance(list_id, str) or not list_id:
            return list(self.mapping_targets)
        found = await account.merge_fields(self._transport(ctx), list_id)
        return [*self.mapping_targets, *(f.target() for f in found)]

    async def check_mapping(
        self, ctx: DestinationContext, targets: Sequence[str]
    ) -> list[SettingError]:
        """Each merge tag mapped must be a merge field of the export's audience, and every
        required merge field must be mapped (Mailchimp refuses a new member without it)."""
        list_id = ctx.export_settings.get("listId")
        if not isinstance(list_id, str) or not list_id:
            return []
        found = await account.merge_fields(self._transport(ctx), list_id)
        errors = fields.check_targets(targets, found)
        errors.extend(
            SettingError(
                f.tag,
                f"the audience's merge field {f.tag!r} ({f.name}) is required: map it",
                "REQUIRED_TARGET",
            )
            for f in found
            if f.required and f.tag not in targets
        )
        return errors

    def build_record(self, values: Mapping[str, Any]) -> dict[str, Any] | Rejection:
        return fields.build_member(values)

    def build_record_with_warnings(
        self, values: Mapping[str, Any]
    ) -> tuple[dict[str, Any] | Rejection, Sequence[FieldWarning]]:
        # Run once per profile: straight to build_member. The warnings come later, from the
        # session, which knows the audience's merge field types.
        return fields.build_member(values), ()

    def record_dedupe_key(self, record: Mapping[str, Any]) -> str:
        # Mailchimp names a member by its lower-cased address.
        return str(record["email_address"]).lower()

    def batch_envelope_size(self, export_settings: Mapping[str, Any]) -> int:
        tags = tags_of(export_settings.get("tags"))
        per_member = PER_MEMBER_EXTRA_BYTES + sum(len(t.encode()) + 3 for t in tags) + 10
        return ENVELOPE_BYTES + MAX_MEMBERS_PER_CALL * per_member

    # -- auth --------------------------------------------------------------------------
    def configuration_problem_for(self, auth_kind: AuthKind) -> str | None:
        """OAuth2 needs the registered app's client id and secret; an API key nothing."""
        if auth_kind == "oauth2":
            return self.settings.missing_oauth_configuration()
        return None

    def authorization_url(
        self, *, state: str, code_challenge: str, redirect_uri: str, settings: Mapping[str, Any]
    ) -> str:
        return oauth.authorization_url(self.settings, state=state, redirect_uri=redirect_uri)

    async def exchange_code(
        self, ctx: DestinationContext, *, code: str, code_verifier: str, redirect_uri: str
    ) -> OAuthTokens:
        return await oauth.exchange_code(ctx, self.settings, code=code, redirect_uri=redirect_uri)

    async def refresh_tokens(self, ctx: DestinationContext, tokens: OAuthTokens) -> OAuthTokens:
        raise AuthorizationLost(
            "Mailchimp's OAuth tokens cannot be refreshed; an admin must connect again"
        )

    def account_identity(self, tokens: OAuthTokens) -> str | None:
        login = tokens.extra.get("login_id")
        return str(login) if login else None

    async def verify_connection(self, ctx: DestinationContext) -> str | None:
        """The cheap ping, then the account's name. A refused key raises InvalidCredentials
        with Mailchimp's words."""
        transport = self._transport(ctx)
        try:
            await transport.call("GET", "/ping")
            found = await transport.call("GET", "/")
        except TransientDestinationError:
            raise  # worth trying again: not a verdict on the key
        except (AuthorizationLost, DestinationError) as exc:
            raise InvalidCredentials(str(exc)) from None
        name = found.get("account_name") if isinstance(found, dict) else None
        return str(name) if name else None

    # -- uploads ---------------------------------------------------------------------
    def open_session(self, ctx: DestinationContext) -> MailchimpSession:
        return MailchimpSession(ctx, self.settings, oauth=uses_oauth(ctx))


def uses_oauth(ctx: DestinationContext) -> bool:
    """Whether the context's connection authenticates with an OAuth token (its data center in
    the tokens' ``extra``) rather than an API key (the first way to connect)."""
    return ctx.auth_kind == "oauth2"
