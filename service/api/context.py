"""The per-operation GraphQL context: the API's parts, the request and who is calling.

:class:`ApiParts` is what the API uses of the process's parts, and nothing
more; the ASGI app (:mod:`service.app`) builds it from the wiring, so the
API never depends on the layer that assembles it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field, replace
from functools import cached_property, partial
from typing import Any, Protocol, TypeAlias

import strawberry
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.dataloader import DataLoader

from service import domain
from service.access.auth import AuthenticationError, Principal, TokenVerifier
from service.access.crypto import CredentialCipher
from service.access.permissions import (
    can_edit_export,
    can_see_connection,
    can_see_connection_details,
    can_use_connection,
)
from service.api.destination_answers import DestinationAnswers
from service.api.subscription_sharing import SharedSubscriptionWork
from service.api.subscription_slots import SubscriptionSlots
from service.connections.destinations import DestinationAccess
from service.connections.oauth import OAuthFlow
from service.coordination.events import RunEvents
from service.coordination.run_requests import RunCoordinator
from service.observability.metrics import Metrics
from service.plugins.manager import DestinationRegistry
from service.settings import Settings
from service.store.base import Store


class Previewer(Protocol):
    """What a run of an export would do now (the runs layer's walk, wired in by the app);
    ``whole_list``: as a whole-list mirror run would, with its confirmation."""

    def __call__(
        self, export: domain.Export, *, whole_list: bool = False
    ) -> Awaitable[domain.SyncPreview]: ...


WholeListCheck: TypeAlias = Callable[[str, str], int]
"""(export id, wholeListConfirmation) -> how many members outside the export the run may
remove; raises ValueError saying why the confirmation does not allow it."""


@dataclass(frozen=True, slots=True)
class ApiParts:
    """The parts of the process the GraphQL API works with."""

    settings: Settings
    store: Store
    destinations: DestinationRegistry
    verifier: TokenVerifier
    cipher: CredentialCipher
    """Seals the secret settings of a connection being created."""
    destination_access: DestinationAccess
    """Reaches a connection's destination (API-key checks, settings checks, pickers)."""
    oauth: OAuthFlow
    runs: RunCoordinator
    """The one way runs are requested and cancelled."""
    events: RunEvents
    """Run changes, for the subscriptions."""
    metrics: Metrics
    destination_answers: DestinationAnswers
    """Destination answers shared by the operations, and each user's budget of calls."""
    previewer: Previewer
    """Walks an export as its next run would, sending nothing (``previewExport``)."""
    whole_list_check: WholeListCheck
    """Checks a whole-list preview's confirmation (``runExport``)."""
    subscription_slots: SubscriptionSlots = field(default_factory=SubscriptionSlots)
    """Open subscriptions per user, for ``SEGPORT_MAX_SUBSCRIPTIONS_PER_USER``."""
    shared_subscriptions: SharedSubscriptionWork = field(default_factory=SharedSubscriptionWork)
    """Subscription events executed and encoded once for subscribers alike."""


@dataclass
class RequestContext:
    parts: ApiParts
    request: Request | WebSocket
    response: Response | WebSocket | None
    request_id: str
    connection_params: dict[str, Any] | None = None
    """Set by strawberry from the websocket ``connection_init`` payload."""
    _principal: Principal | None = field(default=None, repr=False)
    destination_types: dict[str, Any] = field(default_factory=dict, repr=False)
    """Each destination type's GraphQL description, built once per operation (a page of
    exports shows the same one fifty times; see :func:`service.api.nodes.destination_type`)."""

    # The loaders are made on first use: a subscription's context lives as long as the
    # subscription and most never use them (a thousand idle subscriptions held six
    # loaders each, about 3.5 KiB). They close over the store, not over this context: a
    # loader holding a bound method of its context would put the whole operation in a
    # reference cycle, left for the cyclic garbage collector after every request.

    @cached_property
    def segments(self) -> DataLoader[str, domain.Segment | None]:
        """Segments by id, batched: a page of exports reads their segments in one query."""
        return DataLoader(load_fn=partial(_load_segments, self.parts.store))

    @cached_property
    def last_runs(self) -> DataLoader[str, domain.ExportRun | None]:
        """Each export's newest run, batched the same way."""
        return DataLoader(load_fn=partial(_load_last_runs, self.parts.store))

    @cached_property
    def member_counts(self) -> DataLoader[str, int]:
        """Segments' member counts (kept by the store), one read for all a page shows."""
        return DataLoader(load_fn=partial(_load_member_counts, self.parts.store))

    @cached_property
    def exports(self) -> DataLoader[str, domain.Export | None]:
        """Exports by id: a page of runs reads their exports in one query."""
        return DataLoader(load_fn=partial(_load_exports, self.parts.store))

    @cached_property
    def _connections(self) -> DataLoader[str, domain.Connection | None]:
        """Connections by raw id, read once per operation (and once for resolvers asking at
        once)."""
        return DataLoader(load_fn=partial(_load_connections, self.parts.store))

    @cached_property
    def _refresh_schedule(self) -> DataLoader[str, domain.RefreshSchedule]:
        return DataLoader(load_fn=partial(_load_refresh_schedule, self.parts.store))

    def for_operation(self) -> RequestContext:
        """This context with nothing read yet (its loaders and memos made anew): a websocket
        keeps one context for all its operations and every event of its subscriptions, and
        what one of them read must not answer for the next."""
        return replace(self, destination_types={})

    def authorization(self) -> str | None:
        """The ``Bearer ...`` string: the HTTP header, or ``connectionParams.Authorization``."""
        if isinstance(self.request, Request):
            return self.request.headers.get("authorization")
        params = self.connection_params or {}
        value = params.get("Authorization", params.get("authorization"))
        return value if isinstance(value, str) else None

    async def authenticate(self) -> Principal:
        """Verify the caller's token once per context; raises AuthenticationError.

        Over HTTP a context is one operation. A websocket keeps one context for
        all its operations, verified at ``connection_init``: every later
        operation is refused once the token has expired.
        """
        if self._principal is None:
            authorization = self.authorization()
            limit = self.parts.settings.max_header_bytes
            if authorization is not None and len(authorization) > limit:
                # Refused before decoding: a huge token costs nothing to turn away.
                raise AuthenticationError(f"Authorization is longer than {limit} characters")
            self._principal = await self.parts.verifier.verify(authorization)
        elif self._principal.expired(domain.utcnow()):
            raise AuthenticationError("the token expired")
        return self._principal

    @property
    def principal(self) -> Principal:
        """The verified caller (the Authentication extension ran before any resolver)."""
        if self._principal is None:
            raise AuthenticationError("not authenticated")
        return self._principal

    # -- object-level permissions: the caller and one object (role-level ones are
    # -- declared per root field in service.api.permissions) ---------------------------

    def may_see_connection(self, connection: domain.Connection) -> bool:
        return can_see_connection(self.principal, connection)

    def may_see_connection_details(self) -> bool:
        """Status, account, export user, consent and settings of connections."""
        return can_see_connection_details(self.principal)

    def may_use_connection(self, connection: domain.Connection) -> bool:
        """May the caller create or edit exports that send through ``connection``?"""
        return can_use_connection(self.principal, connection)

    async def may_edit_export(self, export: domain.Export) -> bool:
        """May the caller edit, run, cancel or remove ``export`` (given its stored connection)?"""
        connection = None
        if export.connection_id is not None:
            connection = await self.load_connection(export.connection_id)
        return can_edit_export(self.principal, export, connection)

    def may_edit_export_given(
        self, export: domain.Export, connection: domain.Connection | None
    ) -> bool:
        """:meth:`may_edit_export` with the export's stored connection already read."""
        return can_edit_export(self.principal, export, connection)

    # -- reads memoized for the operation ------------------------------------------------

    async def load_connection(self, connection_id: str) -> domain.Connection | None:
        """A connection by raw id, read once per operation (exports in a page share few)."""
        return await self._connections.load(connection_id)

    async def load_refresh_schedule(self) -> domain.RefreshSchedule:
        """The system refresh schedule, read once per operation (every export follows it)."""
        return await self._refresh_schedule.load(REFRESH_SCHEDULE_KEY)

    def forget_connection(self, connection_id: str) -> None:
        """Drop the memo after a mutation changed the connection."""
        with suppress(KeyError):  # not read in this operation
            self._connections.clear(connection_id)


async def _load_segments(store: Store, ids: list[str]) -> list[domain.Segment | None]:
    found = {s.id: s for s in await store.get_segments(ids)}
    return [found.get(i) for i in ids]


async def _load_last_runs(store: Store, export_ids: list[str]) -> list[domain.ExportRun | None]:
    latest = await store.latest_runs(export_ids)
    return [latest.get(i) for i in export_ids]


async def _load_member_counts(store: Store, segment_ids: list[str]) -> list[int]:
    counts = await store.segment_member_counts(segment_ids)
    return [counts.get(i, 0) for i in segment_ids]


async def _load_exports(store: Store, ids: list[str]) -> list[domain.Export | None]:
    found = {e.id: e for e in await store.get_exports(ids)}
    return [found.get(i) for i in ids]


async def _load_connections(store: Store, ids: list[str]) -> list[domain.Connection | None]:
    # An operation sees one or two connections: one read each, however many ask.
    return [await store.get_connection(i) for i in ids]


REFRESH_SCHEDULE_KEY = "system"


async def _load_refresh_schedule(store: Store, keys: list[str]) -> list[domain.RefreshSchedule]:
    schedule = await store.get_refresh_schedule()
    return [schedule for _ in keys]


Info: TypeAlias = strawberry.Info[RequestContext, None]
