# mypy: disable-error-code="untyped-decorator"
# (strawberry.field/mutation with keyword arguments are untyped decorators for mypy)
"""The Relay node types (objects with a global id).

Each type keeps the domain record it shows in a private attribute; fields that
need a permission check or another read resolve lazily, asking the request
context (``info.context.may_...``, which applies :mod:`service.access.permissions`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from datetime import datetime
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError
from strawberry.scalars import JSON

from service import domain
from service.api.context import Info
from service.api.descriptors import (
    AUTH_KIND_VALUES,
    AuthKind,
    ConnectionStatus,
    ConnectionUsableBy,
    DestinationType,
    ExportRunCounts,
    ExportRunError,
    ExportRunStatus,
    ExportRunTrigger,
    ExportSchedule,
    FieldMapping,
    Frequency,
    MappingTargetType,
    SyncMode,
    Weekday,
)
from service.api.errors import FORBIDDEN, bad_user_input
from service.api.ids import to_global_id
from service.api.page_reads import PageReads, Selected, unique
from service.api.pagination import ListConnection, page_args
from service.api.pickers import account_mapping_targets
from service.connections.destinations import auth_kind_of
from service.domain.schedule import export_recurrence, next_due
from service.plugins.manager import DestinationRegistry

REFRESH_SCHEDULE_ID = "system"


def destination_type(destinations: DestinationRegistry, key: str) -> DestinationType:
    destination = destinations.get(key)
    return DestinationType.of(destination) if destination else DestinationType.missing(key)


def operation_destination_type(info: Info, key: str) -> DestinationType:
    """:func:`destination_type`, built once per operation for each key."""
    known: DestinationType | None = info.context.destination_types.get(key)
    if known is None:
        known = info.context.destination_types[key] = destination_type(
            info.context.parts.destinations, key
        )
    return known


def connection_ready(connection: domain.Connection, destinations: DestinationRegistry) -> bool:
    """What a run checks of its connection before sending (see service.runs.lifecycle)."""
    return (
        connection.status is domain.ConnectionStatus.CONNECTED
        and destinations.get(connection.destination_type) is not None
    )


@strawberry.interface(description="An object with a global id, fetchable with `node(id:)`.")
class Node:
    id: strawberry.ID


@strawberry.type
class Segment(Node):
    name: str
    description: str | None
    created_at: datetime
    updated_at: datetime
    record: strawberry.Private[domain.Segment]
    known_member_count: strawberry.Private[int | None] = None
    """Read with the page the segment is on (:mod:`service.api.page_reads`), or None."""

    @classmethod
    def of(cls, segment: domain.Segment, member_count: int | None = None) -> Segment:
        return cls(
            id=strawberry.ID(to_global_id("Segment", segment.id)),
            name=segment.name,
            description=segment.description,
            created_at=segment.created_at,
            updated_at=segment.updated_at,
            record=segment,
            known_member_count=member_count,
        )

    @strawberry.field(description="How many profiles belong to the segment.", graphql_type=int)
    def member_count(self, info: Info) -> int | Awaitable[int]:
        if self.known_member_count is not None:
            return self.known_member_count
        return info.context.member_counts.load(self.record.id)


@strawberry.type(
    description="A configured destination account. Details (status, account, export user, "
    "consent, settings) are null for callers other than admins."
)
class Connection(Node):
    display_name: str
    usable_by: ConnectionUsableBy
    created_at: datetime
    updated_at: datetime
    record: strawberry.Private[domain.Connection]

    @classmethod
    def of(cls, connection: domain.Connection) -> Connection:
        return cls(
            id=strawberry.ID(to_global_id("Connection", connection.id)),
            display_name=connection.display_name,
            usable_by=connection.usable_by,
            created_at=connection.created_at,
            updated_at=connection.updated_at,
            record=connection,
        )

    @strawberry.field
    def destination_type(self, info: Info) -> DestinationType:
        return operation_destination_type(info, self.record.destination_type)

    @strawberry.field(
        description="Whether exports can run through this connection now: it is authorized "
        "and its destination is installed. Visible to whoever sees the connection; why it is "
        "not ready (status, statusMessage) is for admins."
    )
    def ready(self, info: Info) -> bool:
        return connection_ready(self.record, info.context.parts.destinations)

    def _details(self, info: Info) -> domain.Connection | None:
        if info.context.may_see_connection_details():
            return self.record
        return None

    @strawberry.field
    def status(self, info: Info) -> ConnectionStatus | None:
        record = self._details(info)
        return record.status if record else None

    @strawberry.field(
        description="How many exports use this connection (what removing it detaches or "
        "removes); null for callers other than admins."
    )
    async def export_count(self, info: Info) -> int | None:
        record = self._details(info)
        if record is None:
            return None
        return len(await info.context.parts.store.export_ids_using_connection(record.id))

    @strawberry.field(
        description="The mapping targets to offer for exports on this connection: the "
        "destination type's own and those the connected account adds (e.g. Constant "
        "Contact's custom fields, cf:<name>), read from the destination. For whoever may "
        "create exports on the connection; while it is not CONNECTED, the type's own. "
        "Destinations whose targets depend on the export (e.g. an audience's merge "
        "fields) answer for the export settings given in exportSettings."
    )
    async def mapping_targets(
        self,
        info: Info,
        export_settings: Annotated[
            JSON | None,
            strawberry.argument(
                description="The export's settings so far (e.g. its listId), for "
                "destinations whose targets depend on them; a JSON object."
            ),
        ] = None,
    ) -> list[MappingTargetType]:
        if not info.context.may_use_connection(self.record):
            raise GraphQLError(
                f"Your role may not use connection {self.id!r} for exports.",
                extensions={"code": FORBIDDEN},
            )
        if export_settings is not None and not isinstance(export_settings, dict):
            raise bad_user_input(
                f"exportSettings: expected a JSON object of export settings, got "
                f"{type(export_settings).__name__} {export_settings!r}"
            )
        targets = await account_mapping_targets(
            info, self.record, str(self.id), export_settings=export_settings
        )
        return [MappingTargetType.of(target) for target in targets]

    @strawberry.field(
        description="How the connection connects (one of its destination type's authKinds): "
        "OAUTH2 connections are authorized with authorizeConnection, API_KEY ones take their "
        "key when created (and replaceConnectionSecrets). Connections made before ways to "
        "connect were recorded connect the type's first way; null only when that type is not "
        "installed and the connection recorded none."
    )
    def auth_kind(self, info: Info) -> AuthKind | None:
        destination = info.context.parts.destinations.get(self.record.destination_type)
        kind = (
            self.record.auth_kind if destination is None else auth_kind_of(destination, self.record)
        )
        return AuthKind(kind) if kind in AUTH_KIND_VALUES else None

    @strawberry.field(description="Why the connection needs attention, when it does.")
    def status_message(self, info: Info) -> str | None:
        record = self._details(info)
        return record.status_message if record else None

    @strawberry.field(description="The destination account's name or e-mail, once connected.")
    def account(self, info: Info) -> str | None:
        record = self._details(info)
        return record.account if record else None

    @strawberry.field(description="Sub of the user under whose authority scheduled runs send.")
    def export_user(self, info: Info) -> str | None:
        record = self._details(info)
        return record.export_user if record else None

    @strawberry.field
    def data_privacy_accepted_by(self, info: Info) -> str | None:
        record = self._details(info)
        return record.data_privacy_accepted_by if record else None

    @strawberry.field
    def data_privacy_accepted_at(self, info: Info) -> datetime | None:
        record = self._details(info)
        return record.data_privacy_accepted_at if record else None

    @strawberry.field
    def created_by(self, info: Info) -> str | None:
        record = self._details(info)
        return record.created_by if record else None

    @strawberry.field(
        graphql_type=JSON | None,
        description="Non-secret connection settings; secret ones are never returned.",
    )
    def settings(self, info: Info) -> dict[str, Any] | None:
        record = self._details(info)
        return dict(record.settings) if record else None


@strawberry.type
class Export(Node):
    display_name: str
    sync_mode: SyncMode
    field_mapping: list[FieldMapping]
    schedule: ExportSchedule
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    record: strawberry.Private[domain.Export]
    reads: strawberry.Private[PageReads | None] = None
    """What the page the export is on read for it (:mod:`service.api.page_reads`), or None."""

    @classmethod
    def of(cls, export: domain.Export, reads: PageReads | None = None) -> Export:
        return cls(
            id=strawberry.ID(to_global_id("Export", export.id)),
            display_name=export.display_name,
            sync_mode=export.sync_mode,
            field_mapping=[
                FieldMapping(source=m.source, target=m.target) for m in export.field_mapping
            ],
            schedule=ExportSchedule.of(export.schedule),
            created_by=export.created_by,
            created_at=export.created_at,
            updated_at=export.updated_at,
            record=export,
            reads=reads,
        )

    @strawberry.field(graphql_type=JSON, description='E.g. {"listId": "..."}.')
    def settings(self) -> dict[str, Any]:
        return dict(self.record.settings)

    @strawberry.field(description="True when a connection is attached (it may be hidden from you).")
    def attached(self) -> bool:
        return self.record.connection_id is not None

    # The fields below answer from the page's reads when the node carries them, and read
    # for themselves otherwise (service.api.page_reads says why).

    @strawberry.field(
        description="Null when detached, or when your role may not see it.",
        graphql_type=Connection | None,
    )
    def connection(self, info: Info) -> Connection | Awaitable[Connection | None] | None:
        connection_id = self.record.connection_id
        if connection_id is None:
            return None
        if self.reads is not None and self.reads.connections is not None:
            return _visible_connection(info, self.reads.connections.get(connection_id))
        return self._read_connection(info, connection_id)

    async def _read_connection(self, info: Info, connection_id: str) -> Connection | None:
        return _visible_connection(info, await info.context.load_connection(connection_id))

    @strawberry.field
    def destination_type(self, info: Info) -> DestinationType:
        return operation_destination_type(info, self.record.destination_type)

    @strawberry.field(graphql_type=list[Segment])
    def segments(self, info: Info) -> list[Segment] | Awaitable[list[Segment]]:
        reads = self.reads
        if reads is not None and reads.segments is not None:
            known, counts = reads.segments, reads.member_counts
            return [
                Segment.of(known[i], None if counts is None else counts.get(i, 0))
                for i in self.record.segment_ids
                if i in known
            ]
        return self._read_segments(info)

    async def _read_segments(self, info: Info) -> list[Segment]:
        found = await info.context.segments.load_many(self.record.segment_ids)
        return [Segment.of(s) for s in found if s is not None]

    @strawberry.field(graphql_type="ExportRun | None")
    def last_run(self, info: Info) -> ExportRun | Awaitable[ExportRun | None] | None:
        if self.reads is not None and self.reads.last_runs is not None:
            run = self.reads.last_runs.get(self.record.id)
            return ExportRun.of(run) if run else None
        return self._read_last_run(info)

    async def _read_last_run(self, info: Info) -> ExportRun | None:
        run = await info.context.last_runs.load(self.record.id)
        return ExportRun.of(run) if run else None

    @strawberry.field(description="Runs of this export, newest first.")
    async def runs(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> ListConnection[ExportRun]:
        return await list_runs(info, first, after, self.record.id)

    @strawberry.field(
        description="When a schedule next runs this export (its own recurrence or the system "
        "refresh); null when its schedule is off, the refresh schedule is off, or it is detached.",
        graphql_type=datetime | None,
    )
    def next_run_at(self, info: Info) -> datetime | Awaitable[datetime | None] | None:
        if self.record.connection_id is None:
            return None
        if self.reads is not None and self.reads.refresh_schedule is not None:
            return self._next_run_at(self.reads.refresh_schedule)
        return self._read_next_run_at(info)

    def _next_run_at(self, refresh: domain.RefreshSchedule) -> datetime | None:
        followed = export_recurrence(self.record, refresh)
        return next_due(followed[0], domain.utcnow()) if followed else None

    async def _read_next_run_at(self, info: Info) -> datetime | None:
        return self._next_run_at(await info.context.load_refresh_schedule())

    @strawberry.field(
        description="Whether your role may edit, run and remove this export.", graphql_type=bool
    )
    def can_edit(self, info: Info) -> bool | Awaitable[bool]:
        connection_id = self.record.connection_id
        if connection_id is None:
            return info.context.may_edit_export_given(self.record, None)
        if self.reads is not None and self.reads.connections is not None:
            connection = self.reads.connections.get(connection_id)
            return info.context.may_edit_export_given(self.record, connection)
        return info.context.may_edit_export(self.record)


@strawberry.type
class ExportRun(Node):
    status: ExportRunStatus
    trigger: ExportRunTrigger
    requested_by: str | None
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    progress: float = strawberry.field(description="0.0 .. 1.0")
    counts: ExportRunCounts
    message: str | None = strawberry.field(
        description="Why it failed, was skipped or cancelled: the destination's words verbatim."
    )
    cancel_requested: bool
    record: strawberry.Private[domain.ExportRun]
    reads: strawberry.Private[PageReads | None] = None
    """What the page the run is on read for it (:mod:`service.api.page_reads`), or None."""

    @classmethod
    def of(cls, run: domain.ExportRun, reads: PageReads | None = None) -> ExportRun:
        return cls(
            id=strawberry.ID(to_global_id("ExportRun", run.id)),
            status=run.status,
            trigger=run.trigger,
            requested_by=run.requested_by,
            queued_at=run.queued_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
            progress=run.progress,
            counts=ExportRunCounts.of(run.counts),
            message=run.message,
            cancel_requested=run.cancel_requested,
            record=run,
            reads=reads,
        )

    @strawberry.field(description="Null when the export was removed.", graphql_type=Export | None)
    def export(self, info: Info) -> Export | Awaitable[Export | None] | None:
        reads = self.reads
        if reads is not None and reads.exports is not None:
            export = reads.exports.get(self.record.export_id)
            return Export.of(export, reads.nested) if export else None
        return self._read_export(info)

    async def _read_export(self, info: Info) -> Export | None:
        export = await info.context.exports.load(self.record.export_id)
        return Export.of(export) if export else None

    @strawberry.field(description="A sample of per-record and per-batch errors.")
    def errors(self, first: int | None = None) -> list[ExportRunError]:
        sample = self.record.errors if first is None else self.record.errors[: max(first, 0)]
        return [
            ExportRunError(profile_id=e.profile_id, field=e.field, code=e.code, message=e.message)
            for e in sample
        ]


@strawberry.type(description="The system refresh schedule (one per deployment).")
class RefreshSchedule(Node):
    enabled: bool
    frequency: Frequency
    weekdays: list[Weekday]
    times: list[str] = strawberry.field(description="HH:MM, 24-hour, in timeZone.")
    time_zone: str
    updated_by: str | None
    updated_at: datetime | None
    next_run_at: datetime | None = strawberry.field(
        description="When the schedule next runs the exports that follow it; null when off."
    )

    @classmethod
    def of(cls, schedule: domain.RefreshSchedule) -> RefreshSchedule:
        recurrence = schedule.recurrence
        return cls(
            next_run_at=next_due(recurrence, domain.utcnow()) if schedule.enabled else None,
            id=strawberry.ID(to_global_id("RefreshSchedule", REFRESH_SCHEDULE_ID)),
            enabled=schedule.enabled,
            frequency=recurrence.frequency,
            weekdays=[Weekday(d) for d in recurrence.weekdays],
            times=list(recurrence.times),
            time_zone=recurrence.timezone,
            updated_by=schedule.updated_by,
            updated_at=schedule.updated_at,
        )


async def list_runs(
    info: Info, first: int | None, after: str | None, export_id: str | None
) -> ListConnection[ExportRun]:
    """Runs newest first, paged in the database (shared by ``exportRuns`` and ``Export.runs``)."""
    args = page_args(info.context.parts.settings, first, after)
    page = await info.context.parts.store.list_runs(
        args.first, after=args.after, export_id=export_id
    )
    selected = Selected.inside(info).under("edges").under("node")
    reads = await read_for_runs(info, page.items, selected)
    return ListConnection.of(page, lambda run: ExportRun.of(run, reads))


def _visible_connection(info: Info, connection: domain.Connection | None) -> Connection | None:
    if connection is None or not info.context.may_see_connection(connection):
        return None
    return Connection.of(connection)


# -- what a page's nodes read, for all of them at once (service.api.page_reads) ----------


async def read_for_exports(
    info: Info, exports: Sequence[domain.Export], selected: Selected
) -> PageReads:
    """What the fields ``selected`` of Export nodes show for ``exports``, one read of each kind.

    ``selected``: the fields asked for on the Export nodes (e.g. under ``edges.node``).
    """
    reads = PageReads()
    names = selected.names()
    store = info.context.parts.store
    if "segments" in names:
        ids = unique(i for export in exports for i in export.segment_ids)
        reads.segments = {s.id: s for s in await store.get_segments(ids)} if ids else {}
        if "memberCount" in selected.under("segments").names():
            found = list(reads.segments)
            reads.member_counts = await store.segment_member_counts(found) if found else {}
    if "lastRun" in names:
        ids = [export.id for export in exports]
        reads.last_runs = await store.latest_runs(ids) if ids else {}
    if "connection" in names or "canEdit" in names:
        reads.connections = {
            connection_id: await info.context.load_connection(connection_id)
            for connection_id in unique(
                e.connection_id for e in exports if e.connection_id is not None
            )
        }
    if "nextRunAt" in names and any(e.connection_id is not None for e in exports):
        reads.refresh_schedule = await info.context.load_refresh_schedule()
    return reads


async def read_for_runs(
    info: Info, runs: Sequence[domain.ExportRun], selected: Selected
) -> PageReads | None:
    """What the fields ``selected`` of ExportRun nodes show for ``runs``."""
    if "export" not in selected.names():
        return None
    ids = unique(run.export_id for run in runs)
    exports = {e.id: e for e in await info.context.parts.store.get_exports(ids)} if ids else {}
    nested = await read_for_exports(info, list(exports.values()), selected.under("export"))
    return PageReads(exports=exports, nested=nested)
