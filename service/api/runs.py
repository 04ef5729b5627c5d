# mypy: disable-error-code="untyped-decorator"
# (strawberry.field/mutation with keyword arguments are untyped decorators for mypy)
"""Running exports over GraphQL: ``runExport``, ``runAllExports``, ``cancelExportRun``, and the
live ``exportRun`` / ``exportRuns`` subscriptions.

Every run is made through :class:`service.coordination.run_requests.RunCoordinator`, so
the rules (one active run, detached exports cannot run) hold here as they do
for the schedule; its errors become userErrors with the same codes.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from graphql import GraphQLError

from service import domain
from service.access.auth import AuthenticationError
from service.access.permissions import Action, can_edit_export
from service.api.context import Info
from service.api.errors import UserError, UserInputError, bad_user_input, unauthenticated
from service.api.exports import editable_export
from service.api.ids import InvalidGlobalId, expect_global_id, from_global_id, to_global_id
from service.api.nodes import ExportRun
from service.coordination.events import follow_run
from service.coordination.run_requests import ActiveRunExistsError, RunRequestError


@strawberry.input
class RunExportInput:
    export_id: strawberry.ID


@strawberry.input
class RunAllExportsInput:
    client_mutation_id: str | None = strawberry.field(
        default=None, description="Echoed back; lets a client match answers to requests."
    )


@strawberry.input
class CancelExportRunInput:
    run_id: strawberry.ID


@strawberry.type
class ExportRunPayload:
    export_run: ExportRun | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class RunAllExportsPayload:
    export_runs: list[ExportRun] = strawberry.field(default_factory=list)
    user_errors: list[UserError] = strawberry.field(
        default_factory=list,
        description="Exports whose schedule is on but that could not run now "
        "(detached, a run already active, not yours to run).",
    )
    client_mutation_id: str | None = None


def _user_error(field: str | None, problem: RunRequestError) -> UserError:
    message = problem.message
    if isinstance(problem, ActiveRunExistsError):
        # Name the active run by the id clients know it by.
        message = message.replace(
            repr(problem.run_id), repr(to_global_id("ExportRun", problem.run_id))
        )
    return UserError(field=[field] if field else None, message=message, code=problem.code)


async def _editable_run(info: Info, global_id: str) -> domain.ExportRun:
    raw_id = expect_global_id(global_id, "ExportRun", "runId")
    store = info.context.services.store
    run = await store.get_run(raw_id)
    if run is None:
        raise UserInputError("runId", f"run {global_id!r} does not exist", "NOT_FOUND")
    export = await store.get_export(run.export_id)
    connection = None
    if export is not None and export.connection_id is not None:
        connection = await info.context.load_connection(export.connection_id)
    if export is not None and not can_edit_export(info.context.principal, export, connection):
        raise UserInputError("runId", f"your role may not cancel run {global_id!r}", "FORBIDDEN")
    return run


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Run one export now (even one whose schedule is off).")
    async def run_export(self, info: Info, input: RunExportInput) -> ExportRunPayload:
        principal = info.context.require(Action.MANAGE_EXPORTS)
        try:
            export = await editable_export(info, input.export_id, "exportId")
        except UserInputError as exc:
            return ExportRunPayload(user_errors=exc.errors)
        try:
            run = await info.context.services.runs.request_run(
                export.id, domain.ExportRunTrigger.ON_DEMAND, principal.sub
            )
        except RunRequestError as problem:
            return ExportRunPayload(user_errors=[_user_error("exportId", problem)])
        return ExportRunPayload(export_run=ExportRun.of(run))

    @strawberry.mutation(description="Run every export whose schedule is on.")
    async def run_all_exports(self, info: Info, input: RunAllExportsInput) -> RunAllExportsPayload:
        principal = info.context.require(Action.MANAGE_EXPORTS)

        async def may_run(export: domain.Export) -> bool:
            connection = None
            if export.connection_id is not None:
                connection = await info.context.load_connection(export.connection_id)
            return can_edit_export(principal, export, connection)

        result = await info.context.services.runs.run_all_detailed(principal.sub, may_run=may_run)
        return RunAllExportsPayload(
            export_runs=[ExportRun.of(run) for run in result.runs],
            user_errors=[_user_error(None, problem) for problem in result.problems],
            client_mutation_id=input.client_mutation_id,
        )

    @strawberry.mutation(description="Stop a queued or running run; what was sent stays sent.")
    async def cancel_export_run(self, info: Info, input: CancelExportRunInput) -> ExportRunPayload:
        principal = info.context.require(Action.MANAGE_EXPORTS)
        try:
            run = await _editable_run(info, input.run_id)
        except UserInputError as exc:
            return ExportRunPayload(user_errors=exc.errors)
        try:
            cancelled = await info.context.services.runs.cancel_run(run.id, principal.sub)
        except RunRequestError as problem:
            return ExportRunPayload(user_errors=[_user_error("runId", problem)])
        return ExportRunPayload(export_run=ExportRun.of(cancelled))


async def _reader(info: Info) -> None:
    """Subscriptions authenticate from ``connectionParams.Authorization`` and need READ."""
    try:
        await info.context.authenticate()
    except AuthenticationError as exc:
        raise unauthenticated(str(exc)) from exc
    info.context.require(Action.READ)


def _raw_id(global_id: str, type_name: str, argument: str) -> str:
    try:
        found, raw_id = from_global_id(global_id)
    except InvalidGlobalId as exc:
        raise bad_user_input(str(exc)) from exc
    if found != type_name:
        raise bad_user_input(f"{argument}: {global_id!r} is not an {type_name} id")
    return raw_id


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="The run now, then every change; completes after a terminal state."
    )
    async def export_run(self, info: Info, id: strawberry.ID) -> AsyncGenerator[ExportRun, None]:
        await _reader(info)
        raw_id = _raw_id(id, "ExportRun", "id")
        services = info.context.services
        found = False
        # Counted while open: the block ends when the run ends, the client stops or leaves.
        with services.metrics.subscription_open():
            async for run in follow_run(services.store, services.events, raw_id):
                found = True
                yield ExportRun.of(run)
        if not found:
            raise GraphQLError(f"run {id!r} does not exist", extensions={"code": "NOT_FOUND"})

    @strawberry.subscription(description="Every change of every run (of one export, when given).")
    async def export_runs(
        self, info: Info, export_id: strawberry.ID | None = None
    ) -> AsyncGenerator[ExportRun, None]:
        await _reader(info)
        raw_export_id = _raw_id(export_id, "Export", "exportId") if export_id else None
        services = info.context.services
        with services.metrics.subscription_open():
            async with services.events.subscribe(export_id=raw_export_id) as changes:
                async for run in changes:
                    yield ExportRun.of(run)
