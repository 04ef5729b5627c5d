# mypy: disable-error-code="untyped-decorator"
# (strawberry.field/mutation with keyword arguments are untyped decorators for mypy)
"""Exports: listing them and creating, editing, duplicating, (de)attaching and removing them.

Running them lives in :mod:`service.api.runs`. Every write checks the whole
export (settings, mapping, segments, schedule) and reports every problem at
once as userErrors; nothing is saved when there is one.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

import orjson
import strawberry
from strawberry.scalars import JSON

from service import domain
from service.api.context import Info
from service.api.descriptors import Frequency, ScheduleMode, SyncMode, Weekday
from service.api.destination_answers import (
    DESTINATION_CALL_BUDGET_SPENT,
    DestinationCallBudgetSpent,
)
from service.api.destination_calls import DestinationUnanswered, call_destination
from service.api.errors import UserError, UserInputError, user_error
from service.api.ids import expect_global_id
from service.api.input_checks import json_object_problems, search_text, text_problems
from service.api.nodes import Export, read_for_exports
from service.api.page_reads import Selected
from service.api.pagination import ListConnection, page_args
from service.api.sync_modes import SYNC_MODE_DEFAULT as _SYNC_MODE_DEFAULT
from service.api.sync_modes import sync_mode_errors
from service.domain.recurrence import InvalidRecurrence, parse_recurrence
from service.plugins.api import Destination


@strawberry.input
class FieldMappingInput:
    source: str = strawberry.field(
        description="A profile attribute name: one that profiles have (see profileAttributes), "
        "unless allowUnknownSource."
    )
    target: str = strawberry.field(description="A MappingTarget name of the destination.")
    allow_unknown_source: bool = strawberry.field(
        default=False,
        description="Save the mapping although no profile has the source attribute yet "
        "(profiles loaded later will). Without it, such a source is refused: every profile "
        "would be sent without it, or skipped when it is required.",
    )


@strawberry.input
class RecurrenceInput:
    frequency: Frequency
    weekdays: list[Weekday] = strawberry.field(
        default_factory=list, description="Required, non-empty, for WEEKLY."
    )
    times: list[str] = strawberry.field(description="1 to 4 distinct HH:MM (24-hour) times.")
    time_zone: str = strawberry.field(description="An IANA time zone, e.g. Europe/Paris.")


@strawberry.input
class ExportScheduleInput:
    mode: ScheduleMode
    recurrence: RecurrenceInput | None = strawberry.field(
        default=None, description="Required for mode OWN; ignored otherwise."
    )


@strawberry.input
class CreateExportInput:
    display_name: str
    connection_id: strawberry.ID
    settings: JSON | None = None
    field_mapping: list[FieldMappingInput] = strawberry.field(default_factory=list)
    segment_ids: list[strawberry.ID]
    schedule: ExportScheduleInput | None = strawberry.field(
        default=None, description="Default: follow the system refresh schedule."
    )
    sync_mode: SyncMode | None = strawberry.field(default=None, description=_SYNC_MODE_DEFAULT)


@strawberry.input
class UpdateExportInput:
    id: strawberry.ID
    display_name: str | None = None
    settings: JSON | None = None
    field_mapping: list[FieldMappingInput] | None = None
    segment_ids: list[strawberry.ID] | None = None
    schedule: ExportScheduleInput | None = None
    sync_mode: SyncMode | None = strawberry.field(
        default=None,
        description="Changing it keeps the export's ledger (what the destination confirmed).",
    )


@strawberry.input
class DuplicateExportInput:
    id: strawberry.ID
    sync_mode: SyncMode | None = strawberry.field(
        default=None, description="Default: the original's. The copy starts with no ledger."
    )


@strawberry.input
class AttachConnectionInput:
    export_id: strawberry.ID
    connection_id: strawberry.ID


@strawberry.input
class DetachConnectionInput:
    export_id: strawberry.ID


@strawberry.input
class RemoveExportInput:
    id: strawberry.ID


@strawberry.type
class ExportPayload:
    export: Export | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class RemoveExportPayload:
    removed_id: strawberry.ID | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class Query:
    @strawberry.field(description="Exports in creation order; search matches part of the name.")
    async def exports(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        search: str | None = None,
    ) -> ListConnection[Export]:
        args = page_args(info.context.parts.settings, first, after)
        page = await info.context.parts.store.list_exports(
            args.first, after=args.after, search=search_text(search)
        )
        selected = Selected.inside(info).under("edges").under("node")
        reads = await read_for_exports(info, page.items, selected)
        return ListConnection.of(page, lambda export: Export.of(export, reads))


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Save a new export. Saving does not run it.")
    async def create_export(self, info: Info, input: CreateExportInput) -> ExportPayload:
        export = await _create_export(info, input)
        return ExportPayload(export=Export.of(export))

    @strawberry.mutation
    async def update_export(self, info: Info, input: UpdateExportInput) -> ExportPayload:
        export = await _update_export(info, input)
        return ExportPayload(export=Export.of(export))

    @strawberry.mutation(description='A copy named "<name> (copy)", on the same connection.')
    async def duplicate_export(self, info: Info, input: DuplicateExportInput) -> ExportPayload:
        source = await editable_export(info, input.id, "id")
        now = domain.utcnow()
        copy = domain.Export(
            id=domain.new_id(),
            display_name=f"{source.display_name} (copy)",
            connection_id=source.connection_id,
            destination_type=source.destination_type,
            settings=dict(source.settings),
            field_mapping=[domain.FieldMapping(m.source, m.target) for m in source.field_mapping],
            segment_ids=list(source.segment_ids),
            schedule=source.schedule,
            created_by=info.context.principal.sub,
            created_at=now,
            updated_at=now,
            sync_mode=input.sync_mode or source.sync_mode,
        )
        destination = info.context.parts.destinations.get(copy.destination_type)
        if destination is not None:
            problems = sync_mode_errors(copy, destination)
            if problems:
                raise UserInputError.of(problems)
        await info.context.parts.store.save_export(copy)
        return ExportPayload(export=Export.of(copy))

    @strawberry.mutation(description="Attach a connection (of the same destination type).")
    async def attach_connection(self, info: Info, input: AttachConnectionInput) -> ExportPayload:
        export = await editable_export(info, input.export_id, "exportId")
        connection = await usable_connection(info, input.connection_id, "connectionId")
        if connection.destination_type != export.destination_type:
            raise UserInputError(
                "connectionId",
                f"connection {input.connection_id!r} is a {connection.destination_type!r} "
                f"connection; this export sends to {export.destination_type!r}",
                "DESTINATION_MISMATCH",
            )
        export.connection_id = connection.id
        export.updated_at = domain.utcnow()
        await info.context.parts.store.save_export(export)
        return ExportPayload(export=Export.of(export))

    @strawberry.mutation(description="Detach the connection; the export keeps its configuration.")
    async def detach_connection(self, info: Info, input: DetachConnectionInput) -> ExportPayload:
        export = await editable_export(info, input.export_id, "exportId")
        export.connection_id = None
        export.updated_at = domain.utcnow()
        await info.context.parts.store.save_export(export)
        return ExportPayload(export=Export.of(export))

    @strawberry.mutation(description="Remove the export and its run history.")
    async def remove_export(self, info: Info, input: RemoveExportInput) -> RemoveExportPayload:
        store = info.context.parts.store
        export = await editable_export(info, input.id, "id")
        active = await store.active_run(export.id)
        if active is not None:
            await store.request_run_cancel(active.id)
        await store.delete_export(export.id)
        return RemoveExportPayload(removed_id=input.id)


# -- loading what a mutation names ------------------------------------------------


async def editable_export(info: Info, global_id: str, field: str) -> domain.Export:
    """The export a mutation names, when the caller may edit it; a userError otherwise."""
    raw_id = expect_global_id(global_id, "Export", field)
    export = await info.context.parts.store.get_export(raw_id)
    if export is None:
        raise UserInputError(field, f"export {global_id!r} does not exist", "NOT_FOUND")
    if not await info.context.may_edit_export(export):
        raise UserInputError(field, f"your role may not change export {global_id!r}", "FORBIDDEN")
    return export


async def usable_connection(info: Info, global_id: str, field: str) -> domain.Connection:
    """The connection a mutation names, when the caller may send through it."""
    raw_id = expect_global_id(global_id, "Connection", field)
    connection = await info.context.load_connection(raw_id)
    if connection is None:
        raise UserInputError(field, f"connection {global_id!r} does not exist", "NOT_FOUND")
    if not info.context.may_use_connection(connection):
        raise UserInputError(
            field, f"your role may not use connection {global_id!r} for exports", "FORBIDDEN"
        )
    return connection


# -- building and checking an export ----------------------------------------------


async def _create_export(info: Info, input: CreateExportInput) -> domain.Export:
    connection = await usable_connection(info, input.connection_id, "connectionId")
    destination = info.context.parts.destinations.get(connection.destination_type)
    if destination is None:
        raise UserInputError(
            "connectionId",
            f"destination type {connection.destination_type!r} is not installed",
            "DESTINATION_NOT_INSTALLED",
        )
    errors: list[UserError] = []
    now = domain.utcnow()
    export = domain.Export(
        id=domain.new_id(),
        display_name=input.display_name.strip(),
        connection_id=connection.id,
        destination_type=destination.key,
        settings=_collect(errors, lambda: _settings_object(input.settings)),
        field_mapping=[domain.FieldMapping(m.source, m.target) for m in input.field_mapping],
        segment_ids=[],
        schedule=_collect(errors, lambda: _schedule(input.schedule)) or domain.ExportSchedule(),
        created_by=info.context.principal.sub,
        created_at=now,
        updated_at=now,
        sync_mode=input.sync_mode or domain.DEFAULT_SYNC_MODE,
    )
    export.segment_ids = await _segment_ids(info, input.segment_ids, errors)
    errors.extend(await _unknown_sources(info, input.field_mapping))
    await _check(info, export, destination, connection, errors)
    await info.context.parts.store.save_export(export)
    return export


async def _update_export(info: Info, input: UpdateExportInput) -> domain.Export:
    export = await editable_export(info, input.id, "id")
    errors: list[UserError] = []
    if input.display_name is not None:
        export.display_name = input.display_name.strip()
    if input.settings is not None:
        export.settings = _collect(errors, lambda: _settings_object(input.settings)) or {}
    if input.field_mapping is not None:
        export.field_mapping = [
            domain.FieldMapping(m.source, m.target) for m in input.field_mapping
        ]
        # Only a mapping being given is checked: profiles may have changed since it was saved.
        errors.extend(await _unknown_sources(info, input.field_mapping))
    if input.segment_ids is not None:
        export.segment_ids = await _segment_ids(info, input.segment_ids, errors)
    if input.schedule is not None:
        schedule = _collect(errors, lambda: _schedule(input.schedule))
        export.schedule = schedule or export.schedule
    if input.sync_mode is not None:
        export.sync_mode = input.sync_mode
    connection = None
    if export.connection_id is not None:
        connection = await info.context.load_connection(export.connection_id)
    destination = info.context.parts.destinations.get(export.destination_type)
    if destination is None:
        raise UserInputError(
            "id",
            f"destination type {export.destination_type!r} is not installed",
            "DESTINATION_NOT_INSTALLED",
        )
    export.updated_at = domain.utcnow()
    await _check(info, export, destination, connection, errors)
    await info.context.parts.store.save_export(export)
    return export


def _collect(errors: list[UserError], make: Any) -> Any:
    """``make()``, or None after adding its userErrors to ``errors`` (to report them all)."""
    try:
        return make()
    except UserInputError as exc:
        errors.extend(exc.errors)
        return None


def _settings_object(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UserInputError(
            "settings", f"settings must be an object, not {type(value).__name__}", "NOT_AN_OBJECT"
        )
    return value


def _schedule(value: ExportScheduleInput | None) -> domain.ExportSchedule:
    if value is None:
        return domain.ExportSchedule()
    mode = domain.ScheduleMode(value.mode)
    if mode is not domain.ScheduleMode.OWN:
        return domain.ExportSchedule(mode=mode)
    if value.recurrence is None:
        raise UserInputError(
            ["schedule", "recurrence"], "an OWN schedule needs a recurrence", "REQUIRED"
        )
    return domain.ExportSchedule(
        mode=mode, recurrence=recurrence_from_input(value.recurrence, ["schedule", "recurrence"])
    )


def recurrence_from_input(value: RecurrenceInput, where: list[str]) -> domain.Recurrence:
    """Shared by export schedules and the refresh schedule (one set of rules)."""
    try:
        return parse_recurrence(
            frequency=value.frequency,
            times=value.times,
            timezone=value.time_zone,
            weekdays=[d.value for d in value.weekdays],
        )
    except InvalidRecurrence as exc:
        raise UserInputError.of(
            [user_error([*where, p.field], p.message, p.code) for p in exc.problems]
        ) from exc


async def _segment_ids(
    info: Info, global_ids: list[strawberry.ID], errors: list[UserError]
) -> list[str]:
    if not global_ids:
        errors.append(user_error("segmentIds", "choose at least one segment", "REQUIRED"))
        return []
    raw_ids: list[str] = []
    for position, global_id in enumerate(global_ids):
        try:
            raw_ids.append(expect_global_id(global_id, "Segment", "segmentIds"))
        except UserInputError as exc:
            errors.append(
                user_error(["segmentIds", str(position)], exc.errors[0].message, "INVALID_ID")
            )
            raw_ids.append("")
    found = {s.id for s in await info.context.parts.store.get_segments([r for r in raw_ids if r])}
    for position, raw in enumerate(raw_ids):
        if raw and raw not in found:
            errors.append(
                user_error(
                    ["segmentIds", str(position)],
                    f"segment {global_ids[position]!r} does not exist",
                    "NOT_FOUND",
                )
            )
    # Keep the caller's order, once each.
    return list(dict.fromkeys(r for r in raw_ids if r))


async def _check(
    info: Info,
    export: domain.Export,
    destination: Destination,
    connection: domain.Connection | None,
    errors: list[UserError],
) -> None:
    """Every local check, then (only when those pass and the connection is CONNECTED) the
    destination's remote check of the settings. Raises with every problem found."""
    if not export.display_name:
        errors.append(user_error("displayName", "a display name is required", "REQUIRED"))
    errors.extend(text_problems(export.display_name, ["displayName"], "an export's display name"))
    errors.extend(json_object_problems(export.settings, ["settings"], "the setting"))
    errors.extend(
        user_error(["settings", e.field], e.message, e.code)
        for e in destination.validate_export_settings(export.settings)
    )
    errors.extend(_mapping_errors(export, destination))
    errors.extend(sync_mode_errors(export, destination))
    if errors:
        raise UserInputError.of(errors)
    if connection is not None and connection.status is domain.ConnectionStatus.CONNECTED:
        settings = export.settings
        try:
            # Aliased mutations share one check per connection and settings, within the
            # caller's budget of destination calls (as the pickers do).
            remote = await info.context.parts.destination_answers.answer(
                ("check", connection.id, json.dumps(settings, sort_keys=True, default=str)),
                info.context.principal.sub,
                lambda: call_destination(
                    info.context.parts.destination_access,
                    connection,
                    destination,
                    lambda ctx: destination.check_export_settings(ctx, settings),
                    export_settings=settings,
                ),
            )
        except DestinationCallBudgetSpent as exc:
            raise UserInputError(None, exc.message, DESTINATION_CALL_BUDGET_SPENT) from None
        except DestinationUnanswered as exc:
            # The settings could not be checked: nothing is saved, and the caller learns why.
            raise UserInputError(None, exc.message, exc.code) from None
        if remote:
            raise UserInputError.of(
                [user_error(["settings", e.field], e.message, e.code) for e in remote]
            )
        await _check_mapping_remotely(info, export, destination, connection)


async def _check_mapping_remotely(
    info: Info, export: domain.Export, destination: Destination, connection: domain.Connection
) -> None:
    """The destination's check of the mapping's targets against the connected account
    (e.g. custom fields it must have), shared and budgeted like the settings check."""
    targets = [m.target for m in export.field_mapping]
    # The export's settings are in the context: a destination's targets may depend on them
    # (the fields of the list or audience the export sends to).
    settings_key = orjson.dumps(export.settings, option=orjson.OPT_SORT_KEYS).decode()
    try:
        problems = await info.context.parts.destination_answers.answer(
            ("check_mapping", connection.id, tuple(sorted(set(targets))), settings_key),
            info.context.principal.sub,
            lambda: call_destination(
                info.context.parts.destination_access,
                connection,
                destination,
                lambda ctx: destination.check_mapping(ctx, targets),
                export_settings=export.settings,
            ),
        )
    except DestinationCallBudgetSpent as exc:
        raise UserInputError(None, exc.message, DESTINATION_CALL_BUDGET_SPENT) from None
    except DestinationUnanswered as exc:
        raise UserInputError(None, exc.message, exc.code) from None
    if not problems:
        return
    positions = {m.target: p for p, m in reversed(list(enumerate(export.field_mapping)))}
    errors: list[UserError] = []
    for problem in problems:
        where = positions.get(problem.field)
        field = ["fieldMapping"] if where is None else ["fieldMapping", str(where), "target"]
        message = problem.message
        if problem.field and repr(problem.field) not in message:
            message = f"target {problem.field!r}: {message}"
        errors.append(user_error(field, message, problem.code))
    raise UserInputError.of(errors)


async def _unknown_sources(info: Info, mappings: list[FieldMappingInput]) -> list[UserError]:
    """Sources no profile has, each with the closest attribute names profiles do have.

    Before any profile is loaded there is nothing to compare with, and every
    source is taken as given.
    """
    checked = [
        (position, m.source)
        for position, m in enumerate(mappings)
        if not m.allow_unknown_source and m.source.strip()
    ]
    if not checked:
        return []
    known = await info.context.parts.store.profile_attribute_names()
    if not known:
        return []
    names = set(known)
    errors: list[UserError] = []
    for position, source in checked:
        if source in names:
            continue
        suggestions = closest_attributes(source, known)
        hint = f"; did you mean {' or '.join(map(repr, suggestions))}?" if suggestions else "."
        errors.append(
            user_error(
                ["fieldMapping", str(position), "source"],
                f"no profile has the attribute {source!r}{hint} "
                "(set allowUnknownSource when profiles will have it later)",
                "UNKNOWN_SOURCE",
            )
        )
    return errors


def closest_attributes(source: str, known: list[str], count: int = 3) -> list[str]:
    """Known names that differ from ``source`` only in case first, then the most similar."""
    same_but_case = [k for k in known if k.casefold() == source.casefold()]
    lowered = {k.casefold(): k for k in known}
    similar = [
        lowered[m]
        for m in difflib.get_close_matches(source.casefold(), list(lowered), n=count, cutoff=0.6)
    ]
    return list(dict.fromkeys([*same_but_case, *similar]))[:count]


def _mapping_errors(export: domain.Export, destination: Destination) -> list[UserError]:
    errors: list[UserError] = []
    positions: dict[str, int] = {}
    for position, mapping in enumerate(export.field_mapping):
        positions.setdefault(mapping.target, position)
        where = ["fieldMapping", str(position)]
        for part in ("source", "target"):
            value = getattr(mapping, part)
            errors.extend(text_problems(value, [*where, part], f"mapping {position}'s {part}"))
        if not mapping.source.strip():
            errors.append(
                user_error(
                    ["fieldMapping", str(position), "source"],
                    f"mapping {position} needs a profile attribute as source",
                    "REQUIRED",
                )
            )
    for problem in destination.validate_mapping([m.target for m in export.field_mapping]):
        if problem.field in positions and problem.code != "REQUIRED_TARGET":
            field = ["fieldMapping", str(positions[problem.field]), "target"]
        else:
            field = ["fieldMapping"]
        errors.append(user_error(field, problem.message, problem.code))
    return errors
