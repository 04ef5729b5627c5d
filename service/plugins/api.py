"""The destination contract: the Destination class, its session, and what flows through them.

A destination plugin is a separate distribution that registers a module under
the ``segport.destinations`` entry-point group. That module implements the
hooks in :mod:`service.plugins.hookspecs` with the :data:`hookimpl` marker and
returns :class:`Destination` objects. The service owns storage, encryption of
credentials, scheduling, queueing, rate-limiter state, progress and
permissions; a destination describes itself and talks to its own HTTP API
through the :class:`DestinationContext` the service hands it.

What a destination declares (settings, mapping targets, limits) is in
:mod:`service.plugins.specs`. Only names exported from :mod:`service.plugins` are
public, whatever module holds them. See docs/plugins.md.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

import httpx
import orjson
import pluggy

from service.plugins.specs import (
    DestinationLimits,
    MappingTarget,
    SettingError,
    SettingSpec,
    SettingType,
)
from service.plugins.validation import validate_mapping, validate_settings

PROJECT_NAME = "segport"
ENTRY_POINT_GROUP = "segport.destinations"

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marker for hook implementations: ``@hookimpl def register_destinations(): ...``."""

AuthKind = Literal["oauth2", "api_key", "none"]
"""A way to connect an account: OAuth2 (authorization code), an API key (a secret connection
setting) or nothing at all."""


# -- records flowing through a run ------------------------------------------------


@dataclass(slots=True)
class Rejection:
    """Why one record is not sent, or was refused by the destination."""

    code: str
    """Stable machine-readable reason, e.g. ``EMAIL_INVALID``, ``TOO_LONG``."""
    message: str
    field: str | None = None


@dataclass(slots=True)
class EncodedRecord:
    """A mapped, validated contact ready for upload, with its encoded form."""

    profile_id: str
    encoded: bytes
    """The record's bytes inside the request body (counted against ``batch_max_bytes``)."""


@dataclass(slots=True)
class UploadBatch:
    records: list[EncodedRecord]
    size_bytes: int
    """Encoded size of the whole request body (envelope plus records and separators)."""


@dataclass(frozen=True, slots=True)
class FieldWarning:
    """An optional value a destination left out of (or shortened in) a record it still sends.

    Returned beside the record by :meth:`Destination.build_record_with_warnings`; the
    service counts each one (``ExportRunCounts.fieldWarnings``) and samples it in the
    run's errors with the profile id. ``reason`` must not quote the value: run errors
    never carry values. (Plugin API 1.1.)"""

    field: str
    """The mapping target whose value was left out or shortened."""
    code: str
    """Stable machine-readable reason, e.g. ``TOO_LONG``, ``INVALID_DATE``."""
    reason: str
    profile_id: str | None = None
    """Filled in by the service when it samples the warning; plugins leave it None."""


@dataclass(slots=True)
class RecordRejection:
    profile_id: str | None
    rejection: Rejection


@dataclass(slots=True)
class BatchOutcome:
    """What happened to one upload request."""

    receipt: str | None = None
    """An id to follow with :meth:`DestinationSession.confirm` (e.g. an import activity id);
    None when the destination answered synchronously."""
    accepted: int = 0
    """Records known accepted already (synchronous destinations)."""
    rejected: list[RecordRejection] = field(default_factory=list)
    """Records known rejected already, with reasons."""
    cannot_add_to_list: list[RecordRejection] = field(default_factory=list)
    """Records the destination keeps off the list whatever we send (e.g. an address that
    unsubscribed or is in a compliance state), counted as ``cannotAddToList`` and sampled
    (plugin API 1.1)."""
    field_warnings: list[FieldWarning] = field(default_factory=list)
    """Optional values left out of records that were still sent, known only while
    uploading (e.g. a value the destination's field type cannot take, when the types are
    read from the account): counted and sampled as those of
    :meth:`Destination.build_record_with_warnings` are, each with its ``profile_id``
    (plugin API 1.1)."""
    batch_error: str | None = None
    """The destination refused the whole batch: its own words, verbatim."""


@dataclass(slots=True)
class Confirmation:
    """The destination's final account of one receipt."""

    accepted: int = 0
    rejected: int = 0
    cannot_add_to_list: int = 0
    error_samples: list[str] = field(default_factory=list)
    failure: str | None = None
    """Set when the destination's processing itself failed (its words)."""


@dataclass(frozen=True, slots=True)
class ListMember:
    """A contact a run asks the destination to take off the export's list."""

    key: str
    """The record's de-duplication key, as :meth:`Destination.record_dedupe_key` returned it
    when the contact was sent (e-mail destinations: the lower-cased address)."""


@dataclass(frozen=True, slots=True)
class ListStanding:
    """What the destination says of the export's list, read before a run adds to it
    (:meth:`DestinationSession.read_list_standing`; plugin API 1.2). Keys are
    de-duplication keys, as :class:`ListMember` has them. Either may be a lazy iterable:
    the core reads it once."""

    members: Iterable[str] = ()
    """The list's members now (filled only when asked for them)."""
    cannot_add: Iterable[str] = ()
    """Contacts the destination keeps off its lists whatever is sent (e.g. unsubscribed)."""


@dataclass(frozen=True, slots=True)
class RemovalOutcome:
    """What happened to one :class:`ListMember` the run asked to remove."""

    key: str
    removed: bool
    """True once the contact is not a member of the list (also when it was not one)."""
    reason: str | None = None
    """Why it could not be removed (the destination's words), when ``removed`` is False."""


# -- errors a destination raises -------------------------------------------------


class DestinationError(Exception):
    """A permanent failure; the run fails with this message (the destination's words)."""


class ConfirmationFailed(DestinationError):
    """Raised by :meth:`DestinationSession.confirm` when the destination's processing of a
    receipt did not complete (after whatever re-sends the plugin allows). ``confirmation``
    holds the exact counts of the receipt's records; the service applies them, then fails
    the run with the message (the destination's words). (Plugin API 1.1.)"""

    def __init__(self, message: str, confirmation: Confirmation) -> None:
        super().__init__(message)
        self.confirmation = confirmation


class TransientDestinationError(DestinationError):
    """Worth retrying later (the job is retried with backoff)."""


class AuthorizationLost(DestinationError):
    """The destination no longer accepts our credentials (e.g. OAuth ``invalid_grant``).

    The service marks the connection NEEDS_REAUTHORIZATION and fails the run.
    """


class InvalidCredentials(DestinationError):
    """Raised while connecting (code exchange, API-key check) when the destination refuses."""


# -- what the service gives a destination ---------------------------------------


@dataclass(slots=True)
class OAuthTokens:
    """Tokens as stored (encrypted) by the service."""

    access_token: str
    refresh_token: str | None = None
    expires_at: datetime | None = None
    scope: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class RateLimiter(Protocol):
    async def acquire(self) -> float:
        """Wait for a request slot of this destination (per second and per day, shared by the
        whole deployment); returns the seconds waited."""

    async def pause_until(self, until: datetime, reason: str) -> None:
        """Tell every process that no request may be sent before ``until``
        (e.g. the daily quota is spent)."""

    def in_flight(self, scope: str = "") -> AbstractAsyncContextManager[None]:
        """Hold one of the ``max_requests_in_flight`` request slots of ``scope`` (e.g. a
        digest of the API key: what the destination counts connections by) while a request
        is in flight: ``async with ctx.rate_limiter.in_flight(scope): ...``. Shared by every
        process of the deployment; a slot whose process died is freed after a lease.
        Without a declared cap it holds nothing (plugin API 1.1)."""
        ...


class CredentialSource(Protocol):
    async def tokens(self) -> OAuthTokens:
        """Current tokens; refreshed first when the access token expires within a minute."""

    async def refresh(self, stale: OAuthTokens) -> OAuthTokens:
        """After a 401: refresh once, serialized per connection (a lock, then the stored
        tokens are re-read; if another process refreshed already, those are returned)."""

    async def secrets(self) -> dict[str, Any]:
        """Secret connection settings (e.g. an API key), decrypted."""

    async def rejected(self, message: str) -> None:
        """The destination refuses these credentials for good (e.g. a revoked API key):
        the service marks the connection NEEDS_REAUTHORIZATION with ``message`` (the
        destination's words); the caller then raises :class:`AuthorizationLost`
        (plugin API 1.1)."""


class RunReporter(Protocol):
    async def waiting(self, reason: str, until: datetime | None = None) -> None:
        """Say on the run why it waits (e.g. the daily quota), then return; the caller sleeps
        with :meth:`DestinationContext.sleep`."""

    def cancelled(self) -> bool:
        """True once the run was asked to stop."""

    async def destination_progress(self, processed: int, total: int) -> None:
        """How far the destination got with the records it was sent and is still processing
        (e.g. an import's completed items of its total); moves the run's progress between
        checkpoints. (Plugin API 1.1.)"""


@dataclass(slots=True)
class DestinationContext:
    """What a destination gets for one connection (and one export while running)."""

    http: httpx.AsyncClient
    """Shared HTTP client (connection pooling, timeouts). Base URLs come from the plugin's
    own server-side settings, never from user input."""
    rate_limiter: RateLimiter
    credentials: CredentialSource
    connection_settings: Mapping[str, Any]
    export_settings: Mapping[str, Any] = field(default_factory=dict)
    reporter: RunReporter | None = None
    sleep: Callable[[float], Awaitable[None]] = field(default_factory=lambda: _sleep)
    """Sleep that ends early when the run is cancelled; tests can make it instant."""
    auth_kind: AuthKind | None = None
    """How the connection connects: one of :attr:`Destination.auth_kinds`, so that a
    destination offering several reads the right credentials (the OAuth tokens or the
    secret settings). None only in contexts made outside any connection; read it as the
    destination's first kind. (Plugin API 1.3.)"""


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


@dataclass(frozen=True, slots=True)
class ListChoice:
    """An item of a picker a destination offers (e.g. a mailing list)."""

    id: str
    name: str
    member_count: int | None = None


class DestinationSession(abc.ABC):
    """Uploads the batches of one run. Created by :meth:`Destination.open_session`."""

    @abc.abstractmethod
    async def upload(self, batch: UploadBatch) -> BatchOutcome:
        """Send one batch (already within the declared limits). Retries throttling and server
        errors itself; raises DestinationError subclasses for what cannot be retried."""

    async def confirm(self, receipt: str) -> Confirmation:
        """Follow the destination's asynchronous processing of ``receipt`` until it ends."""
        raise NotImplementedError

    async def remove_list_members(self, members: Sequence[ListMember]) -> list[RemovalOutcome]:
        """Take ``members`` off the export's list (the list membership only: never delete the
        contact from the account). Called only when the destination declares
        :attr:`Destination.can_remove_list_members`, with at most
        ``limits.removal_batch_max_records`` members; returns one outcome per member, in any
        order. Removing a contact that is not a member counts as removed (a resumed run may
        ask again). Retries and raises like :meth:`upload`."""
        raise NotImplementedError

    async def read_list_standing(self, *, members: bool, cannot_add: bool = True) -> ListStanding:
        """The export's list as the destination has it now: its members when ``members``
        (a run asks once, before it sends a record the ledger does not hold, so that a
        mirror leaves memberships it did not create), and the contacts it cannot add when
        ``cannot_add`` (runs that skip unchanged records ask for them; the others do not).
        Called only when the destination declares :attr:`Destination.can_read_list_standing`.
        Retries and raises like :meth:`upload`.
        (Plugin API 1.2.)"""
        raise NotImplementedError

    async def uploads_done(self) -> None:  # noqa: B027 - optional hook
        """Called once every batch of the run is uploaded (not when the run stops early):
        a session that gathers its follow-up reads may make them now rather than wait for
        more uploads. Default: nothing. (Plugin API 1.1.)"""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release resources."""


class Destination(abc.ABC):
    """A destination type. Subclass it, fill the class attributes, implement what your
    auth kinds and uploads need, and return an instance from ``register_destinations``."""

    key: str
    display_name: str
    auth_kind: AuthKind = "none"
    """The way to connect; with several (:attr:`auth_kinds`), the first of them."""
    auth_kinds: tuple[AuthKind, ...] = ("none",)
    """Every way an account can be connected, the default (used when a connection does not
    say) first, e.g. ``("api_key", "oauth2")``. A class that sets only :attr:`auth_kind`
    (plugins written for 1.0-1.2) gets ``(auth_kind,)``; one that sets only ``auth_kinds``
    gets ``auth_kind = auth_kinds[0]``. The hooks whose answer depends on the way of
    connecting take it (:meth:`connection_settings_for`,
    :meth:`validate_connection_settings_for`, :meth:`configuration_problem_for`) and a
    connection's :class:`DestinationContext` says it (``ctx.auth_kind``). (Plugin API 1.3.)"""
    connection_settings: Sequence[SettingSpec] = ()
    export_settings: Sequence[SettingSpec] = ()
    mapping_targets: Sequence[MappingTarget] = ()
    limits: DestinationLimits = DestinationLimits()
    can_remove_list_members: bool = False
    """Whether sessions implement :meth:`DestinationSession.remove_list_members` (a mirror
    export needs it)."""
    can_read_list_standing: bool = False
    """Whether sessions implement :meth:`DestinationSession.read_list_standing`. Without it
    a mirror takes every contact the export sent for its own, and contacts the destination
    cannot add are only known by the counts of the run that sent them."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # One of the two attributes set by the class fills the other (see auth_kinds).
        own = cls.__dict__
        if "auth_kinds" in own and "auth_kind" not in own and cls.auth_kinds:
            cls.auth_kind = cls.auth_kinds[0]
        elif "auth_kind" in own and "auth_kinds" not in own:
            cls.auth_kinds = (cls.auth_kind,)

    # -- settings ------------------------------------------------------------
    def validate_export_settings(self, settings: Mapping[str, Any]) -> list[SettingError]:
        """Local checks of an export's settings. The default checks the declared specs
        (required, type, max length, unknown names); extend it with ``super()``."""
        return validate_settings(self.export_settings, settings)

    def validate_connection_settings(self, settings: Mapping[str, Any]) -> list[SettingError]:
        return validate_settings(self.connection_settings, settings)

    def connection_settings_for(self, auth_kind: AuthKind) -> Sequence[SettingSpec]:
        """The connection settings a connection by ``auth_kind`` is asked for (e.g. an API key
        only for ``api_key``). Default: :attr:`connection_settings`. (Plugin API 1.3.)"""
        return self.connection_settings

    def validate_connection_settings_for(
        self, auth_kind: AuthKind, settings: Mapping[str, Any]
    ) -> list[SettingError]:
        """Local checks of the settings of a connection by ``auth_kind``; what the service
        calls. Default: :meth:`validate_connection_settings` when the destination offers one
        way to connect (as for 1.0-1.2 plugins), else the specs of
        :meth:`connection_settings_for`. (Plugin API 1.3.)"""
        if len(self.auth_kinds) <= 1:
            return self.validate_connection_settings(settings)
        return validate_settings(self.connection_settings_for(auth_kind), settings)

    async def check_export_settings(
        self, ctx: DestinationContext, settings: Mapping[str, Any]
    ) -> list[SettingError]:
        """Remote checks against the connected account (e.g. the list exists). Default: none."""
        return []

    async def list_choices(self, ctx: DestinationContext, setting: str) -> list[ListChoice]:
        """Values to pick from for an export setting (e.g. ``listId``). Default: none."""
        return []

    # -- mapping ---------------------------------------------------------------
    def validate_mapping(self, targets: Sequence[str]) -> list[SettingError]:
        """Checks a field mapping's target names. The default requires every declared required
        target and refuses unknown ones; destinations with open-ended targets (custom fields)
        override :meth:`is_known_target`."""
        return validate_mapping(targets, self.mapping_targets, self.is_known_target)

    def is_known_target(self, target: str) -> bool:
        return any(t.name == target for t in self.mapping_targets)

    async def account_mapping_targets(self, ctx: DestinationContext) -> list[MappingTarget]:
        """The targets a mapping picker offers for one connected account: the declared ones
        and whatever the account adds (e.g. its custom fields). Default: the declared
        targets. (Plugin API 1.1.)"""
        return list(self.mapping_targets)

    async def check_mapping(
        self, ctx: DestinationContext, targets: Sequence[str]
    ) -> list[SettingError]:
        """Remote checks of a mapping's targets against the connected account (e.g. a custom
        field the account does not have); each error's ``field`` is the target. Default:
        none. (Plugin API 1.1.)"""
        return []

    @abc.abstractmethod
    def build_record(self, values: Mapping[str, Any]) -> dict[str, Any] | Rejection:
        """Turn mapped values (target name to raw profile value; absent when the profile has
        none) into the destination's record, normalized and validated, or a Rejection."""

    def build_record_with_warnings(
        self, values: Mapping[str, Any]
    ) -> tuple[dict[str, Any] | Rejection, Sequence[FieldWarning]]:
        """:meth:`build_record`, plus the optional values left out of (or shortened in) the
        record that is still sent. The service runs this one; the default calls
        :meth:`build_record` and warns of nothing. (Plugin API 1.1.)"""
        return self.build_record(values), ()

    def record_dedupe_key(self, record: Mapping[str, Any]) -> str:
        """Key under which two records of one run are duplicates. Default: the whole record."""
        return orjson.dumps(record, option=orjson.OPT_SORT_KEYS).decode()

    def encode_record(self, record: Mapping[str, Any]) -> bytes:
        """A record's bytes inside the request body. Default: compact JSON."""
        return orjson.dumps(record)

    def batch_envelope_size(self, export_settings: Mapping[str, Any]) -> int:
        """Bytes of the request body around the records (records are joined by one byte)."""
        return 0

    # -- configuration and auth --------------------------------------------------
    def configuration_problem(self) -> str | None:
        """Why this installed destination cannot connect an account as configured on the
        server (naming the variable to set), or None. createConnection and
        authorizeConnection refuse with it. Default: None. (Plugin API 1.1.)"""
        return None

    def configuration_problem_for(self, auth_kind: AuthKind) -> str | None:
        """:meth:`configuration_problem` for connections by ``auth_kind`` (e.g. OAuth2 needs a
        registered app's client id, an API key nothing on the server); what the service
        calls, also to say which ways to connect are configured. Default:
        :meth:`configuration_problem`. (Plugin API 1.3.)"""
        return self.configuration_problem()

    def account_identity(self, tokens: OAuthTokens) -> str | None:
        """A stable id of the account ``tokens`` were granted for (e.g. from
        ``OAuthTokens.extra``), stored on the connection: re-authorizing into another account
        is refused unless the admin confirms it. Default: None (not checked). (Plugin API
        1.1.)"""
        return None

    def authorization_url(
        self, *, state: str, code_challenge: str, redirect_uri: str, settings: Mapping[str, Any]
    ) -> str:
        """OAuth2: the URL the browser is sent to (authorization code with PKCE S256)."""
        raise NotImplementedError

    async def exchange_code(
        self, ctx: DestinationContext, *, code: str, code_verifier: str, redirect_uri: str
    ) -> OAuthTokens:
        """OAuth2: trade the authorization code for tokens. Raise InvalidCredentials."""
        raise NotImplementedError

    async def refresh_tokens(self, ctx: DestinationContext, tokens: OAuthTokens) -> OAuthTokens:
        """OAuth2: refresh. Raise AuthorizationLost when the refresh token is refused."""
        raise NotImplementedError

    async def verify_connection(self, ctx: DestinationContext) -> str | None:
        """Check the credentials work; return the account's display name (or None).
        Raise InvalidCredentials when they do not."""
        return None

    # -- uploads -----------------------------------------------------------------
    @abc.abstractmethod
    def open_session(self, ctx: DestinationContext) -> DestinationSession:
        """A session that uploads one run's batches."""


__all__ = [
    "ENTRY_POINT_GROUP",
    "PROJECT_NAME",
    "AuthKind",
    "AuthorizationLost",
    "BatchOutcome",
    "Confirmation",
    "ConfirmationFailed",
    "CredentialSource",
    "Destination",
    "DestinationContext",
    "DestinationError",
    "DestinationLimits",
    "DestinationSession",
    "EncodedRecord",
    "FieldWarning",
    "InvalidCredentials",
    "ListChoice",
    "ListMember",
    "ListStanding",
    "MappingTarget",
    "OAuthTokens",
    "RateLimiter",
    "RecordRejection",
    "Rejection",
    "RemovalOutcome",
    "RunReporter",
    "SettingError",
    "SettingSpec",
    "SettingType",
    "TransientDestinationError",
    "UploadBatch",
    "hookimpl",
]
