"""Which role-level action each root field needs: one table, enforced by one field extension.

:data:`ROOT_FIELD_ACTIONS` names every root field of the schema (``Query.*``,
``Mutation.*``, ``Subscription.*``) with the :class:`Action` its caller's role
must allow (None: any authenticated caller). :mod:`service.api.schema` gives
each root field a :class:`RoleGuard` from this table and refuses to build a
schema with a root field the table does not name, so a new resolver cannot
forget its check. Resolvers do not check roles themselves; checks that need
the object (may this caller edit *this* export?) stay with the resolver that
loaded it, through :class:`~service.api.context.RequestContext`.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import FieldExtension
from strawberry.extensions.field_extension import AsyncExtensionResolver, SyncExtensionResolver

from service.access.auth import AuthenticationError
from service.access.permissions import Action, allows
from service.api.errors import forbidden, unauthenticated
from service.api.subscription_slots import TooManySubscriptions

TOO_MANY_SUBSCRIPTIONS = "TOO_MANY_SUBSCRIPTIONS"

ANY_CALLER = None
"""Needs no action: any caller with a valid token."""

ROOT_FIELD_ACTIONS: Mapping[str, Action | None] = {
    "Query.viewer": ANY_CALLER,
    "Query.node": Action.READ,
    "Query.destinationTypes": Action.READ,
    "Query.segments": Action.READ,
    "Query.profileAttributes": Action.READ,
    "Query.connections": Action.SEE_CONNECTIONS,
    "Query.exports": Action.READ,
    "Query.exportSettingChoices": Action.MANAGE_EXPORTS,
    "Query.exportRuns": Action.READ,
    "Query.refreshSchedule": Action.READ,
    "Query.upcomingRunTimes": Action.READ,
    "Query.destinationPauses": Action.MANAGE_DESTINATION_PAUSES,
    "Mutation.upsertSegment": Action.LOAD_DATA,
    "Mutation.upsertProfiles": Action.LOAD_DATA,
    "Mutation.createConnection": Action.MANAGE_CONNECTIONS,
    "Mutation.updateConnection": Action.MANAGE_CONNECTIONS,
    "Mutation.replaceConnectionSecrets": Action.MANAGE_CONNECTIONS,
    "Mutation.addExportUser": Action.MANAGE_CONNECTIONS,
    "Mutation.removeConnection": Action.MANAGE_CONNECTIONS,
    "Mutation.authorizeConnection": Action.MANAGE_CONNECTIONS,
    "Mutation.completeConnectionAuthorization": Action.MANAGE_CONNECTIONS,
    "Mutation.createExport": Action.MANAGE_EXPORTS,
    "Mutation.updateExport": Action.MANAGE_EXPORTS,
    "Mutation.duplicateExport": Action.MANAGE_EXPORTS,
    "Mutation.attachConnection": Action.MANAGE_EXPORTS,
    "Mutation.detachConnection": Action.MANAGE_EXPORTS,
    "Mutation.removeExport": Action.MANAGE_EXPORTS,
    "Mutation.runExport": Action.MANAGE_EXPORTS,
    "Mutation.previewExport": Action.MANAGE_EXPORTS,
    "Mutation.runAllExports": Action.MANAGE_EXPORTS,
    "Mutation.cancelExportRun": Action.MANAGE_EXPORTS,
    "Mutation.updateRefreshSchedule": Action.CHANGE_REFRESH_SCHEDULE,
    "Mutation.liftDestinationPause": Action.MANAGE_DESTINATION_PAUSES,
    "Subscription.exportRun": Action.READ,
    "Subscription.exportRuns": Action.READ,
}


class RoleGuard(FieldExtension):
    """Refuse a root field with a ``FORBIDDEN`` error unless the caller's role allows ``action``.

    Queries and mutations are checked before their resolver runs (the
    Authentication extension verified the token already). A subscription is
    checked on its first step, inside the stream, after authenticating from
    ``connectionParams``: the Authentication extension's verdict does not stop
    a subscription, and a refusal then reaches the client as any failure of
    the stream does. An open subscription holds one of its user's
    ``SEGPORT_MAX_SUBSCRIPTIONS_PER_USER`` slots; the next one is refused
    (``TOO_MANY_SUBSCRIPTIONS``) while they are all taken.
    """

    def __init__(self, action: Action | None, *, stream: bool) -> None:
        self.action = action
        self.stream = stream

    def _check(self, info: strawberry.Info) -> None:
        if self.action is not None and not allows(info.context.principal, self.action):
            raise forbidden(self.action.value)

    def resolve(
        self, next_: SyncExtensionResolver, source: Any, info: strawberry.Info, **kwargs: Any
    ) -> Any:
        self._check(info)
        return next_(source, info, **kwargs)

    async def resolve_async(
        self, next_: AsyncExtensionResolver, source: Any, info: strawberry.Info, **kwargs: Any
    ) -> Any:
        if self.stream:
            stream = next_(source, info, **kwargs)
            assert inspect.isasyncgen(stream), "a subscription resolver is an async generator"
            return self._guarded(stream, info)
        self._check(info)
        return await next_(source, info, **kwargs)

    async def _guarded(
        self, stream: AsyncGenerator[Any, None], info: strawberry.Info
    ) -> AsyncIterator[Any]:
        parts = info.context.parts
        try:
            try:
                principal = await info.context.authenticate()
            except AuthenticationError as exc:
                raise unauthenticated(str(exc)) from exc
            self._check(info)
            try:
                # One of the caller's slots while the stream is open (only the stream's
                # start can be refused: nothing else raises TooManySubscriptions).
                with parts.subscription_slots.hold(
                    principal.sub, parts.settings.max_subscriptions_per_user
                ):
                    async for item in stream:
                        yield item
            except TooManySubscriptions as exc:
                raise GraphQLError(str(exc), extensions={"code": TOO_MANY_SUBSCRIPTIONS}) from exc
        finally:
            # Closed here, so what the stream holds open (a subscription to run events,
            # the open-subscriptions gauge) ends when the client stops listening.
            await stream.aclose()
            if not parts.subscription_slots.any_open():
                # The last one closed: what subscriptions shared is not needed any more.
                parts.shared_subscriptions.forget()
