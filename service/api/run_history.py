# mypy: disable-error-code="untyped-decorator"
# (strawberry.field/mutation with keyword arguments are untyped decorators for mypy)
"""The read side of runs: ``exportRuns`` (running them lives in :mod:`service.api.runs`)."""

from __future__ import annotations

import strawberry

from service.api.context import Info
from service.api.errors import bad_user_input
from service.api.ids import InvalidGlobalId, from_global_id
from service.api.nodes import ExportRun, list_runs
from service.api.pagination import ListConnection


@strawberry.type
class Query:
    @strawberry.field(description="Runs newest first, of one export when exportId is given.")
    async def export_runs(
        self,
        info: Info,
        export_id: strawberry.ID | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> ListConnection[ExportRun]:
        raw_export_id: str | None = None
        if export_id is not None:
            try:
                type_name, raw_export_id = from_global_id(export_id)
            except InvalidGlobalId as exc:
                raise bad_user_input(str(exc)) from exc
            if type_name != "Export":
                raise bad_user_input(f"{export_id!r} is not an Export id")
        return await list_runs(info, first, after, raw_export_id)
