# mypy: disable-error-code="untyped-decorator"
# (strawberry.field/mutation with keyword arguments are untyped decorators for mypy)
"""Pickers: the values a frontend can offer for an export setting of a connection.

``exportSettingChoices(connectionId:, setting:)`` asks the connection's
destination (``Destination.list_choices``) for what the connected account
holds, e.g. Constant Contact's lists with their member counts for ``listId``.

It is a query, so refusals are top-level GraphQL errors, each with a stable
``extensions.code``: ``FORBIDDEN`` (the role may not create exports, or not
on this connection), ``BAD_USER_INPUT`` (not a connection id), ``NOT_FOUND``,
``DESTINATION_NOT_INSTALLED``, ``UNKNOWN_SETTING``, ``NOT_CONNECTED``,
``DESTINATION_CALL_BUDGET_SPENT`` (see :mod:`service.api.destination_answers`),
and the codes of :mod:`service.api.destination_calls` when the destination
cannot answer (``NEEDS_REAUTHORIZATION``, ``DESTINATION_ERROR``,
``DESTINATION_UNAVAILABLE``). Messages name the caller's values, or are the
destination's words; tokens and other internals never appear.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import strawberry
from graphql import GraphQLError

from service import domain
from service.api.context import Info
from service.api.destination_answers import (
    DESTINATION_CALL_BUDGET_SPENT,
    DestinationCallBudgetSpent,
)
from service.api.destination_calls import DestinationUnanswered, call_destination
from service.api.errors import FORBIDDEN, bad_user_input
from service.api.ids import InvalidGlobalId, from_global_id
from service.plugins.api import Destination, ListChoice, MappingTarget

NOT_FOUND = "NOT_FOUND"
DESTINATION_NOT_INSTALLED = "DESTINATION_NOT_INSTALLED"
UNKNOWN_SETTING = "UNKNOWN_SETTING"
NOT_CONNECTED = "NOT_CONNECTED"


def _refused(message: str, code: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


@strawberry.type(description="A value a user can pick for an export setting.")
class SettingChoice:
    id: str = strawberry.field(description="The value to put into the export's settings.")
    name: str = strawberry.field(description="What to show, e.g. the list's name.")
    member_count: int | None = strawberry.field(
        description="How many contacts the destination holds in it, when it says."
    )

    @classmethod
    def of(cls, choice: ListChoice) -> SettingChoice:
        return cls(id=choice.id, name=choice.name, member_count=choice.member_count)


@strawberry.type
class Query:
    @strawberry.field(
        description="The values to offer for an export setting of a connection (e.g. the "
        "account's lists for Constant Contact's listId), read from the destination. For "
        "whoever may create exports on the connection; the connection must be CONNECTED."
    )
    async def export_setting_choices(
        self, info: Info, connection_id: strawberry.ID, setting: str
    ) -> list[SettingChoice]:
        connection = await _connection(info, connection_id)
        if not info.context.may_use_connection(connection):
            raise _refused(
                f"Your role may not use connection {connection_id!r} for exports.", FORBIDDEN
            )
        destination = _destination(info, connection, connection_id)
        names = [spec.name for spec in destination.export_settings]
        if setting not in names:
            raise _refused(
                f"{setting!r} is not an export setting of {destination.display_name} "
                f"(its export settings: {', '.join(names) or 'none'}).",
                UNKNOWN_SETTING,
            )
        if connection.status is not domain.ConnectionStatus.CONNECTED:
            raise _refused(
                f"Connection {connection_id!r} is not connected to "
                f"{destination.display_name}; an admin must authorize it first.",
                NOT_CONNECTED,
            )
        choices = await _ask(info, destination, connection, setting)
        return [SettingChoice.of(choice) for choice in choices]


async def _connection(info: Info, connection_id: str) -> domain.Connection:
    try:
        type_name, raw_id = from_global_id(connection_id)
    except InvalidGlobalId as exc:
        raise bad_user_input(f"connectionId: {exc}") from exc
    if type_name != "Connection":
        raise bad_user_input(f"connectionId: {connection_id!r} is not a Connection id")
    connection = await info.context.load_connection(raw_id)
    if connection is None:
        raise _refused(f"Connection {connection_id!r} does not exist.", NOT_FOUND)
    return connection


def _destination(info: Info, connection: domain.Connection, connection_id: str) -> Destination:
    destination = info.context.parts.destinations.get(connection.destination_type)
    if destination is None:
        raise _refused(
            f"Connection {connection_id!r} sends to {connection.destination_type!r}, "
            "which is not installed in this deployment.",
            DESTINATION_NOT_INSTALLED,
        )
    return destination


async def _ask(
    info: Info, destination: Destination, connection: domain.Connection, setting: str
) -> list[ListChoice]:
    """The destination's choices; its refusals become coded errors, never a masked crash.

    Asked once per operation and shared for a short while (aliases and other
    callers reuse the answer), each call charged to the caller's budget.
    """
    try:
        return await info.context.parts.destination_answers.answer(
            ("choices", connection.id, setting),
            info.context.principal.sub,
            lambda: call_destination(
                info.context.parts.destination_access,
                connection,
                destination,
                lambda ctx: destination.list_choices(ctx, setting),
            ),
        )
    except DestinationCallBudgetSpent as exc:
        raise _refused(exc.message, DESTINATION_CALL_BUDGET_SPENT) from None
    except DestinationUnanswered as exc:
        raise _refused(exc.message, exc.code) from None


async def account_mapping_targets(
    info: Info,
    connection: domain.Connection,
    connection_id: str,
    *,
    export_settings: Mapping[str, Any] | None = None,
) -> list[MappingTarget]:
    """The targets to offer for a mapping on ``connection``: the destination's own and the
    connected account's (e.g. its custom fields), asked once per operation and shared
    briefly like the other pickers. A connection not CONNECTED offers the declared ones.

    ``export_settings`` (the export being edited, e.g. its audience) reach the plugin's
    ``account_mapping_targets`` as ``ctx.export_settings``; answers are shared per
    settings, so two audiences never see each other's targets."""
    destination = _destination(info, connection, connection_id)
    if connection.status is not domain.ConnectionStatus.CONNECTED:
        return list(destination.mapping_targets)
    settings = dict(export_settings or {})
    try:
        return await info.context.parts.destination_answers.answer(
            ("mapping_targets", connection.id, json.dumps(settings, sort_keys=True, default=str)),
            info.context.principal.sub,
            lambda: call_destination(
                info.context.parts.destination_access,
                connection,
                destination,
                destination.account_mapping_targets,
                export_settings=settings,
            ),
        )
    except DestinationCallBudgetSpent as exc:
        raise _refused(exc.message, DESTINATION_CALL_BUDGET_SPENT) from None
    except DestinationUnanswered as exc:
        raise _refused(exc.message, exc.code) from None
