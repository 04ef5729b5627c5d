# mypy: disable-error-code="untyped-decorator"
# (strawberry.field/mutation with keyword arguments are untyped decorators for mypy)
"""Connections: listing them, creating, editing, authorizing and removing them (admins)."""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Any

import httpx
import strawberry
from strawberry.scalars import JSON

from service import domain
from service.access.permissions import visible_usable_by
from service.api.context import Info
from service.api.descriptors import AuthKind, ConnectionUsableBy
from service.api.errors import UserError, UserInputError, user_error
from service.api.ids import expect_global_id, to_global_id
from service.api.input_checks import check_text, json_object_problems, text_problems
from service.api.nodes import Connection
from service.api.pagination import ListConnection, page_args
from service.connections.context import auth_kind_of, destination_context
from service.connections.credentials import seal_credentials
from service.connections.oauth import OAuthError
from service.plugins.api import AuthKind as PluginAuthKind
from service.plugins.api import Destination, DestinationError, InvalidCredentials

NOT_CONFIGURED = "NOT_CONFIGURED"
"""The destination cannot connect with the server's configuration (a variable to set)."""


@strawberry.enum(description="What removeConnection does with the exports that use it.")
class RemoveConnectionExports(Enum):
    FAIL_IF_USED = "FAIL_IF_USED"
    DETACH = "DETACH"
    REMOVE = "REMOVE"


@strawberry.input
class CreateConnectionInput:
    destination_type: str = strawberry.field(description="The key of one of the destinationTypes.")
    display_name: str
    usable_by: ConnectionUsableBy = domain.ConnectionUsableBy.ADMINS
    accept_data_privacy: bool = strawberry.field(
        description="Must be true: profiles sent through this connection leave the company."
    )
    settings: JSON | None = strawberry.field(
        default=None,
        description="The connection settings of the way to connect (authKinds' "
        "connectionSettings), by name.",
    )
    auth_kind: AuthKind | None = strawberry.field(
        default=None,
        description="How to connect: one of the destination type's authKinds (default: its "
        "first). OAUTH2 connections are then authorized with authorizeConnection.",
    )


@strawberry.input
class UpdateConnectionInput:
    id: strawberry.ID
    display_name: str | None = None
    usable_by: ConnectionUsableBy | None = None


@strawberry.input
class ReplaceConnectionSecretsInput:
    connection_id: strawberry.ID
    settings: JSON = strawberry.field(
        description="Every secret connection setting of the destination type, by name (e.g. "
        "a new API key). Checked with the destination before it replaces the stored ones; "
        "never shown again."
    )


@strawberry.input
class AddExportUserInput:
    connection_id: strawberry.ID


@strawberry.input
class RemoveConnectionInput:
    id: strawberry.ID
    exports: RemoveConnectionExports = RemoveConnectionExports.FAIL_IF_USED


@strawberry.input
class AuthorizeConnectionInput:
    connection_id: strawberry.ID
    allow_account_change: bool = strawberry.field(
        default=False,
        description="Confirm that this authorization may connect a different destination "
        "account than the connection had (otherwise that is refused: ACCOUNT_CHANGED).",
    )


@strawberry.input
class CompleteConnectionAuthorizationInput:
    state: str
    code: str


@strawberry.type
class ConnectionPayload:
    connection: Connection | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class AuthorizeConnectionPayload:
    authorization_url: str | None = None
    connection: Connection | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class RemoveConnectionPayload:
    removed_id: strawberry.ID | None = None
    removed_export_ids: list[strawberry.ID] = strawberry.field(default_factory=list)
    detached_export_ids: list[strawberry.ID] = strawberry.field(default_factory=list)
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class Query:
    @strawberry.field(
        description="Admins see every connection, contributors those usable by contributors; "
        "viewers get a FORBIDDEN error."
    )
    async def connections(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> ListConnection[Connection]:
        args = page_args(info.context.parts.settings, first, after)
        page = await info.context.parts.store.list_connections(
            args.first, after=args.after, usable_by=visible_usable_by(info.context.principal)
        )
        return ListConnection.of(page, Connection.of)


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def create_connection(
        self, info: Info, input: CreateConnectionInput
    ) -> ConnectionPayload:
        connection = await _create_connection(info, input)
        return ConnectionPayload(connection=Connection.of(connection))

    @strawberry.mutation
    async def update_connection(
        self, info: Info, input: UpdateConnectionInput
    ) -> ConnectionPayload:
        connection = await load_connection(info, input.id, "id")
        if input.display_name is not None:
            connection.display_name = _display_name(input.display_name)
        if input.usable_by is not None:
            connection.usable_by = input.usable_by
        connection.updated_at = domain.utcnow()
        await info.context.parts.store.save_connection(connection)
        return ConnectionPayload(connection=Connection.of(connection))

    @strawberry.mutation(
        description="Replace an API-key connection's secret settings (write-only): the new "
        "values are checked with the destination, stored encrypted, and the connection is "
        "CONNECTED again."
    )
    async def replace_connection_secrets(
        self, info: Info, input: ReplaceConnectionSecretsInput
    ) -> ConnectionPayload:
        connection = await _replace_secrets(info, input)
        return ConnectionPayload(connection=Connection.of(connection))

    @strawberry.mutation(description="The caller becomes the connection's export user.")
    async def add_export_user(self, info: Info, input: AddExportUserInput) -> ConnectionPayload:
        connection = await load_connection(info, input.connection_id, "connectionId")
        connection.export_user = info.context.principal.sub
        connection.updated_at = domain.utcnow()
        await info.context.parts.store.save_connection(connection)
        return ConnectionPayload(connection=Connection.of(connection))

    @strawberry.mutation
    async def remove_connection(
        self, info: Info, input: RemoveConnectionInput
    ) -> RemoveConnectionPayload:
        return await _remove_connection(info, input)

    @strawberry.mutation(description="Start OAuth: the URL to send the browser to.")
    async def authorize_connection(
        self, info: Info, input: AuthorizeConnectionInput
    ) -> AuthorizeConnectionPayload:
        connection = await load_connection(info, input.connection_id, "connectionId")
        destination = info.context.parts.destinations.get(connection.destination_type)
        if destination is None or auth_kind_of(destination, connection) != "oauth2":
            raise UserInputError(
                "connectionId",
                f"connection {input.connection_id!r} does not authorize with OAuth",
                "NOT_OAUTH",
            )
        problem = destination.configuration_problem_for("oauth2")
        if problem is not None:
            raise UserInputError("connectionId", problem, NOT_CONFIGURED)
        try:
            url = await info.context.parts.oauth.start(
                connection,
                info.context.principal.sub,
                allow_account_change=input.allow_account_change,
            )
        except OAuthError as exc:
            raise UserInputError("connectionId", str(exc.message), str(exc.code)) from exc
        return AuthorizeConnectionPayload(
            authorization_url=str(url), connection=Connection.of(connection)
        )

    @strawberry.mutation(description="Finish OAuth with the redirect's state and code.")
    async def complete_connection_authorization(
        self, info: Info, input: CompleteConnectionAuthorizationInput
    ) -> ConnectionPayload:
        try:
            connection = await info.context.parts.oauth.complete(
                input.state, input.code, info.context.principal.sub
            )
        except OAuthError as exc:
            raise UserInputError("code", str(exc.message), str(exc.code)) from exc
        return ConnectionPayload(connection=Connection.of(connection))


def _display_name(value: str) -> str:
    name = value.strip()
    if not name:
        raise UserInputError("displayName", "a display name is required", "REQUIRED")
    return check_text(name, ["displayName"], "a connection's display name")


async def load_connection(info: Info, global_id: str, field: str) -> domain.Connection:
    """The connection a mutation names, or a NOT_FOUND userError for ``field``."""
    raw_id = expect_global_id(global_id, "Connection", field)
    connection = await info.context.parts.store.get_connection(raw_id)
    if connection is None:
        raise UserInputError(field, f"connection {global_id!r} does not exist", "NOT_FOUND")
    return connection


def _settings_object(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UserInputError(
            field, f"{field} must be an object, not {type(value).__name__}", "NOT_AN_OBJECT"
        )
    return value


async def _create_connection(info: Info, input: CreateConnectionInput) -> domain.Connection:
    parts = info.context.parts
    principal = info.context.principal
    errors: list[UserError] = []
    if input.accept_data_privacy is not True:
        errors.append(
            user_error(
                "acceptDataPrivacy",
                "the data privacy and compliance terms must be accepted: profiles sent through "
                "a connection leave the company",
                "DATA_PRIVACY_NOT_ACCEPTED",
            )
        )
    destination = parts.destinations.get(input.destination_type)
    if destination is None:
        installed = ", ".join(d.key for d in parts.destinations.all()) or "none"
        errors.append(
            user_error(
                "destinationType",
                f"unknown destination type {input.destination_type!r} (installed: {installed})",
                "UNKNOWN_DESTINATION_TYPE",
            )
        )
    if not input.display_name.strip():
        errors.append(user_error("displayName", "a display name is required", "REQUIRED"))
    errors.extend(
        text_problems(input.display_name.strip(), ["displayName"], "a connection's display name")
    )
    settings = _settings_object(input.settings, "settings")
    errors.extend(json_object_problems(settings, ["settings"], "the setting"))
    auth_kind: PluginAuthKind | None = None
    if destination is not None:
        auth_kind = _chosen_auth_kind(destination, input.auth_kind, errors)
    if destination is not None and auth_kind is not None:
        problem = destination.configuration_problem_for(auth_kind)
        if problem is not None:
            errors.append(
                user_error(
                    "authKind" if input.auth_kind is not None else "destinationType",
                    problem,
                    NOT_CONFIGURED,
                )
            )
        errors.extend(
            user_error(["settings", e.field], e.message, e.code)
            for e in destination.validate_connection_settings_for(auth_kind, settings)
        )
    if errors or destination is None or auth_kind is None:
        raise UserInputError.of(errors)

    now = domain.utcnow()
    secret_names = {
        spec.name for spec in destination.connection_settings_for(auth_kind) if spec.secret
    }
    secrets = {k: v for k, v in settings.items() if k in secret_names}
    connection = domain.Connection(
        id=domain.new_id(),
        display_name=input.display_name.strip(),
        destination_type=destination.key,
        usable_by=input.usable_by,
        status=domain.ConnectionStatus.PENDING_AUTHORIZATION,
        created_by=principal.sub,
        created_at=now,
        updated_at=now,
        settings={k: v for k, v in settings.items() if k not in secret_names},
        # Secret settings (API keys) are only ever stored encrypted.
        credentials=seal_credentials(parts.cipher, secrets=secrets) if secrets else None,
        data_privacy_accepted_by=principal.sub,
        data_privacy_accepted_at=now,
        auth_kind=auth_kind,
    )
    await _connect_without_oauth(info, destination, connection)
    await parts.store.save_connection(connection)
    return connection


def _chosen_auth_kind(
    destination: Destination, chosen: AuthKind | None, errors: list[UserError]
) -> PluginAuthKind | None:
    """The way to connect ``createConnection`` asks for (the destination's first when it
    names none), or None with an ``authKind`` error when the destination does not offer it."""
    if chosen is None:
        return destination.auth_kind
    for kind in destination.auth_kinds:
        if kind == chosen.value:
            return kind
    offered = ", ".join(str(k).upper() for k in destination.auth_kinds)
    errors.append(
        user_error(
            "authKind",
            f"{destination.display_name} does not connect by {chosen.name} "
            f"(its ways to connect: {offered})",
            "UNSUPPORTED_AUTH_KIND",
        )
    )
    return None


async def _connect_without_oauth(
    info: Info, destination: Destination, connection: domain.Connection
) -> None:
    """API-key and credential-less connections are connected at once; OAuth ones wait."""
    auth_kind = auth_kind_of(destination, connection)
    if auth_kind == "none":
        connection.status = domain.ConnectionStatus.CONNECTED
    elif auth_kind == "api_key":
        ctx = await destination_context(info.context.parts.destination_access, connection)
        try:
            connection.account = await destination.verify_connection(ctx)
        except InvalidCredentials as exc:
            raise UserInputError(
                "settings",
                f"the destination refused these credentials: {exc}",
                "INVALID_CREDENTIALS",
            ) from exc
        except (DestinationError, httpx.HTTPError) as exc:
            # No verdict on the credentials (the destination is away or failing): say so,
            # in its words, rather than fail the mutation.
            words = str(exc) if isinstance(exc, DestinationError) else type(exc).__name__
            raise UserInputError(
                "settings",
                f"{destination.display_name} could not check these credentials now ({words}); "
                "try again later",
                "DESTINATION_UNAVAILABLE",
            ) from exc
        connection.status = domain.ConnectionStatus.CONNECTED


async def _replace_secrets(info: Info, input: ReplaceConnectionSecretsInput) -> domain.Connection:
    parts = info.context.parts
    connection = await load_connection(info, input.connection_id, "connectionId")
    destination = parts.destinations.get(connection.destination_type)
    auth_kind = auth_kind_of(destination, connection) if destination else None
    secret_specs = (
        [s for s in destination.connection_settings_for(auth_kind) if s.secret]
        if destination is not None and auth_kind is not None
        else []
    )
    if destination is None or auth_kind != "api_key" or not secret_specs:
        raise UserInputError(
            "connectionId",
            f"connection {input.connection_id!r} has no secret settings to replace"
            + (" (it connects by OAuth2: authorize it again)" if auth_kind == "oauth2" else ""),
            "NO_SECRETS",
        )
    settings = _settings_object(input.settings, "settings")
    errors = json_object_problems(settings, ["settings"], "the setting")
    secret_names = {spec.name for spec in secret_specs}
    for name in settings:
        if name not in secret_names:
            allowed = ", ".join(sorted(secret_names))
            errors.append(
                user_error(
                    ["settings", name],
                    f"{name!r} is not a secret setting of {destination.display_name} "
                    f"(secret settings: {allowed}); change other settings with updateConnection",
                    "NOT_SECRET",
                )
            )
    # The whole connection's settings are checked as on creation, with the new secrets.
    merged = {**connection.settings, **settings}
    errors.extend(
        user_error(["settings", e.field], e.message, e.code)
        for e in destination.validate_connection_settings_for(auth_kind, merged)
        if e.field in secret_names
    )
    if errors:
        raise UserInputError.of(errors)
    # Checked as a connection not stored yet (a fresh id), whose credentials are read from
    # the object: the stored key stays in use until the new one is known to work.
    candidate = dataclasses.replace(
        connection,
        id=domain.new_id(),
        credentials=seal_credentials(parts.cipher, secrets=settings),
    )
    await _connect_without_oauth(info, destination, candidate)
    connection.credentials = candidate.credentials
    connection.account = candidate.account or connection.account
    connection.status = domain.ConnectionStatus.CONNECTED
    connection.status_message = None
    connection.updated_at = domain.utcnow()
    await parts.store.save_connection(connection)
    info.context.forget_connection(connection.id)
    return connection


async def _remove_connection(info: Info, input: RemoveConnectionInput) -> RemoveConnectionPayload:
    store = info.context.parts.store
    connection = await load_connection(info, input.id, "id")
    export_ids = await store.export_ids_using_connection(connection.id)
    if export_ids and input.exports is RemoveConnectionExports.FAIL_IF_USED:
        raise UserInputError(
            "exports",
            f"connection {input.id!r} is used by {len(export_ids)} export(s); "
            "choose exports: DETACH or REMOVE",
            "CONNECTION_IN_USE",
        )
    payload = RemoveConnectionPayload(removed_id=input.id)
    now = domain.utcnow()
    global_ids = [strawberry.ID(to_global_id("Export", e)) for e in export_ids]
    if input.exports is RemoveConnectionExports.REMOVE:
        for export_id in export_ids:
            active = await store.active_run(export_id)
            if active is not None:
                await store.request_run_cancel(active.id)
            await store.delete_export(export_id)
        payload.removed_export_ids = global_ids
    elif export_ids:
        await store.detach_exports(connection.id, now)
        payload.detached_export_ids = global_ids
    await store.delete_connection(connection.id)
    info.context.forget_connection(connection.id)
    return payload
