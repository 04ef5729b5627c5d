# mypy: disable-error-code="untyped-decorator"
# (strawberry.field/mutation with keyword arguments are untyped decorators for mypy)
"""Who is calling (``viewer``), ``node(id:)`` for any object, installed destination types."""

from __future__ import annotations

import strawberry

from service.api.context import Info
from service.api.descriptors import DestinationType
from service.api.ids import InvalidGlobalId, from_global_id
from service.api.nodes import (
    REFRESH_SCHEDULE_ID,
    Connection,
    Export,
    ExportRun,
    Node,
    RefreshSchedule,
    Segment,
    read_for_exports,
    read_for_runs,
)
from service.api.page_reads import Selected


@strawberry.type
class Viewer:
    sub: str
    roles: list[str]


@strawberry.type
class Query:
    @strawberry.field(description="The caller, as their token says.")
    def viewer(self, info: Info) -> Viewer:
        principal = info.context.principal
        return Viewer(sub=principal.sub, roles=sorted(r.value for r in principal.roles))

    @strawberry.field(
        description="Any object by global id; null when it does not exist or your role may "
        "not see it."
    )
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        store = info.context.parts.store
        try:
            type_name, raw_id = from_global_id(id)
        except InvalidGlobalId:
            return None
        match type_name:
            case "Segment":
                segment = await store.get_segment(raw_id)
                return Segment.of(segment) if segment else None
            case "Connection":
                connection = await info.context.load_connection(raw_id)
                if connection is None or not info.context.may_see_connection(connection):
                    return None
                return Connection.of(connection)
            case "Export":
                export = await store.get_export(raw_id)
                if export is None:
                    return None
                return Export.of(
                    export, await read_for_exports(info, [export], Selected.inside(info))
                )
            case "ExportRun":
                run = await store.get_run(raw_id)
                if run is None:
                    return None
                return ExportRun.of(run, await read_for_runs(info, [run], Selected.inside(info)))
            case "RefreshSchedule" if raw_id == REFRESH_SCHEDULE_ID:
                return RefreshSchedule.of(await store.get_refresh_schedule())
        return None

    @strawberry.field(description="One per installed destination plugin.")
    def destination_types(self, info: Info) -> list[DestinationType]:
        return [DestinationType.of(d) for d in info.context.parts.destinations.all()]
