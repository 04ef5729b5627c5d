# mypy: disable-error-code="untyped-decorator"
# (strawberry.field/mutation with keyword arguments are untyped decorators for mypy)
"""``previewExport``: what a run of an export would do now, without sending anything.

The same permission as ``runExport`` (the caller may edit the export), and the
same refusals as a run would meet (detached, connection not authorized, no
segments, destination not installed, a mirror the destination cannot do), as
userErrors. The walk itself is the runs layer's (``ApiParts.previewer``).
"""

from __future__ import annotations

from enum import Enum

import strawberry
from strawberry.scalars import JSON

from service import domain
from service.api.context import Info
from service.api.errors import UserError, UserInputError, user_error
from service.api.execution_gate import outside_gate
from service.api.exports import editable_export
from service.api.sync_modes import sync_mode_errors
from service.connections.destinations import reconnect_advice


@strawberry.enum(
    description="Which members of its list a MIRROR run may remove (README, Sync modes)."
)
class MirrorScope(Enum):
    EXPORT_MEMBERS = strawberry.enum_value(
        "EXPORT_MEMBERS",
        description="Only memberships the export created that left its segments (every "
        "MIRROR run).",
    )
    WHOLE_LIST = strawberry.enum_value(
        "WHOLE_LIST",
        description="Also every other list member outside the segments: previewed here, a "
        "run does it only when runExport passes this preview's wholeListConfirmation.",
    )


@strawberry.input
class PreviewExportInput:
    export_id: strawberry.ID
    mirror_scope: MirrorScope = strawberry.field(
        default=MirrorScope.EXPORT_MEMBERS,
        description="WHOLE_LIST: preview a whole-list mirror run (MIRROR exports of "
        "destinations that can list their members), and get its confirmation.",
    )


@strawberry.type
class PreviewContact:
    profile_id: str
    contact: JSON = strawberry.field(description="The record exactly as it would be sent.")


@strawberry.type
class ExportPreview:
    to_add: int = strawberry.field(description="Records the destination has not confirmed yet.")
    to_update: int = strawberry.field(description="Records it holds, changed since then.")
    unchanged: int = strawberry.field(description="Records it holds as they are: not sent.")
    to_remove: int = strawberry.field(
        description="MIRROR: contacts this export put on the list that left its segments."
    )
    skipped_invalid: int
    skipped_duplicate: int
    field_warnings: int
    sample: list[PreviewContact] = strawberry.field(
        description="The first records a run would send (profile-id order), at most 20."
    )
    note: str | None = strawberry.field(
        description="Why a run would send everything now (its ledger would be reset)."
    )
    outside_export: int = strawberry.field(
        default=0,
        description="WHOLE_LIST: list members the export did not put there and outside its "
        "segments, which the whole-list run would also remove (counted in toRemove).",
    )
    whole_list_confirmation: str | None = strawberry.field(
        default=None,
        description="WHOLE_LIST: pass it to runExport (within an hour) to remove them; the "
        "run removes none of them if the list then holds more than outsideExport.",
    )

    @classmethod
    def of(cls, preview: domain.SyncPreview) -> ExportPreview:
        return cls(
            to_add=preview.to_add,
            to_update=preview.to_update,
            unchanged=preview.unchanged,
            to_remove=preview.to_remove,
            skipped_invalid=preview.skipped_invalid,
            skipped_duplicate=preview.skipped_duplicate,
            field_warnings=preview.field_warnings,
            sample=[
                PreviewContact(profile_id=c.profile_id, contact=c.contact) for c in preview.sample
            ],
            note=preview.note,
            outside_export=preview.outside_export,
            whole_list_confirmation=preview.whole_list_confirmation,
        )


@strawberry.type
class PreviewExportPayload:
    preview: ExportPreview | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="What a run of the export would do now (counts and the first records), "
        "sending nothing. Needs the same permission as runExport."
    )
    async def preview_export(self, info: Info, input: PreviewExportInput) -> PreviewExportPayload:
        export = await editable_export(info, input.export_id, "exportId")
        problems = await _cannot_run(info, export)
        if problems:
            raise UserInputError.of(problems)
        whole_list = input.mirror_scope is MirrorScope.WHOLE_LIST
        if whole_list:
            scope_problems = whole_list_errors(info, export, "mirrorScope")
            if scope_problems:
                raise UserInputError.of(scope_problems)
        async with outside_gate():
            preview = await info.context.parts.previewer(export, whole_list=whole_list)
        return PreviewExportPayload(preview=ExportPreview.of(preview))


def whole_list_errors(info: Info, export: domain.Export, field: str) -> list[UserError]:
    """Why ``export`` cannot have a whole-list mirror run."""
    if export.sync_mode is not domain.SyncMode.MIRROR:
        message = f"export {export.display_name!r} is not a MIRROR export: set syncMode first"
        return [user_error(field, message, "NOT_A_MIRROR")]
    destination = info.context.parts.destinations.get(export.destination_type)
    if destination is None or not destination.can_read_list_standing:
        name = export.destination_type if destination is None else destination.display_name
        message = f"{name} cannot list its members, so a whole-list mirror is not possible"
        return [user_error(field, message, "WHOLE_LIST_UNSUPPORTED")]
    return []


async def _cannot_run(info: Info, export: domain.Export) -> list[UserError]:
    """Why a run of ``export`` could not run now (empty when it could)."""
    name = export.display_name
    if export.connection_id is None:
        message = f"export {name!r} is detached from its connection; attach one first"
        return [user_error("exportId", message, "EXPORT_DETACHED")]
    connection = await info.context.load_connection(export.connection_id)
    if connection is None:
        return [
            user_error(
                "exportId", f"the connection of export {name!r} no longer exists", "NOT_FOUND"
            )
        ]
    status = domain.ConnectionStatus
    if connection.status is status.NEEDS_REAUTHORIZATION:
        advice = reconnect_advice(
            info.context.parts.destinations.get(export.destination_type), connection
        )
        message = f"connection {connection.display_name!r} needs re-authorization: {advice}"
        return [user_error("exportId", message, "NEEDS_REAUTHORIZATION")]
    if connection.status is status.PENDING_AUTHORIZATION:
        message = f"connection {connection.display_name!r} has not been authorized yet"
        return [user_error("exportId", message, "PENDING_AUTHORIZATION")]
    destination = info.context.parts.destinations.get(export.destination_type)
    if destination is None:
        message = f"destination type {export.destination_type!r} is not installed"
        return [user_error("exportId", message, "DESTINATION_NOT_INSTALLED")]
    problems: list[UserError] = []
    if not export.segment_ids:
        problems.append(user_error("exportId", f"export {name!r} has no segments", "NO_SEGMENTS"))
    problems.extend(sync_mode_errors(export, destination))
    return problems
