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
from functools import partial

import strawberry
from graphql import GraphQLError

from service import domain
from service.api.context import Info
from service.api.errors import UserError, UserInputError, bad_user_input
from service.api.exports import editable_export
from service.api.ids import InvalidGlobalId, expect_global_id, from_global_id, to_global_id
from service.api.nodes import ExportRun
from service.api.preview import whole_list_errors
from service.coordination.events import follow_run, run_to_bytes
from service.coordination.run_requests import ActiveRunExistsError, RunRequestError


@strawberry.input
class RunExportInput:
    export_id: strawberry.ID
    full_resync: bool = strawberry.field(
        default=False,
        description="Send every record whatever the export's ledger says (and refresh it).",
    )
    whole_list_confirmation: str | None = strawberry.field(
        default=None,
        description="A whole-list mirror run: the wholeListConfirmation of a recent "
        "previewExport(mirrorScope: WHOLE_LIST) of this export.",
    )


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


def _refused(field: str, problem: RunRequestError) -> UserInputError:
    return UserInputError.of([_user_error(field, problem)])


async def _editable_run(info: Info, global_id: str) -> domain.ExportRun:
    raw_id = expect_global_id(global_id, "ExportRun", "runId")
    store = info.context.parts.store
    run = await store.get_run(raw_id)
    if run is None:
        raise UserInputError("runId", f"run {global_id!r} does not exist", "NOT_FOUND")
    export = await store.get_export(run.export_id)
    if export is not None and not await info.context.may_edit_export(export):
        raise UserInputError("runId", f"your role may not cancel run {global_id!r}", "FORBIDDEN")
    return run


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Run one export now (even one whose schedule is off).")
    async def run_export(self, info: Info, input: RunExportInput) -> ExportRunPayload:
        export = await editable_export(info, input.export_id, "exportId")
        whole_list = None
        if input.whole_list_confirmation is not None:
            field = "wholeListConfirmation"
            problems = whole_list_errors(info, export, field)
            if problems:
                raise UserInputError.of(problems)
            try:
                whole_list = info.context.parts.whole_list_check(
                    export.id, input.whole_list_confirmation
                )
            except ValueError as bad:
                raise UserInputError(field, str(bad), "CONFIRMATION_INVALID") from None
        try:
            run = await info.context.parts.runs.request_run(
                export.id,
                domain.ExportRunTrigger.ON_DEMAND,
                info.context.principal.sub,
                full_resync=input.full_resync,
                whole_list=whole_list,
            )
        except RunRequestError as problem:
            raise _refused("exportId", problem) from problem
        return ExportRunPayload(export_run=ExportRun.of(run))

    @strawberry.mutation(description="Run every export whose schedule is on.")
    async def run_all_exports(self, info: Info, input: RunAllExportsInput) -> RunAllExportsPayload:
        result = await info.context.parts.runs.run_all_detailed(
            info.context.principal.sub, may_run=info.context.may_edit_export
        )
        return RunAllExportsPayload(
            export_runs=[ExportRun.of(run) for run in result.runs],
            user_errors=[_user_error(None, problem) for problem in result.problems],
            client_mutation_id=input.client_mutation_id,
        )

    @strawberry.mutation(description="Stop a queued or running run; what was sent stays sent.")
    async def cancel_export_run(self, info: Info, input: CancelExportRunInput) -> ExportRunPayload:
        run = await _editable_run(info, input.run_id)
        try:
            cancelled = await info.context.parts.runs.cancel_run(run.id, info.context.principal.sub)
        except RunRequestError as problem:
            raise _refused("runId", problem) from problem
        return ExportRunPayload(export_run=ExportRun.of(cancelled))


def _raw_id(global_id: str, type_name: str, argument: str) -> str:
    try:
        found, raw_id = from_global_id(global_id)
    except InvalidGlobalId as exc:
        raise bad_user_input(str(exc)) from exc
    if found != type_name:
        raise bad_user_input(f"{argument}: {global_id!r} is not an {type_name} id")
    return raw_id


def _event_node(info: Info, run: domain.ExportRun) -> ExportRun:
    """The event's root object, one for every subscriber (so they can share its execution;
    see :mod:`service.api.subscription_sharing`)."""
    shared = info.context.parts.shared_subscriptions
    return shared.event_node(run_to_bytes(run), partial(ExportRun.of, run))


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="The run now, then every change; completes after a terminal state."
    )
    async def export_run(self, info: Info, id: strawberry.ID) -> AsyncGenerator[ExportRun, None]:
        raw_id = _raw_id(id, "ExportRun", "id")
        parts = info.context.parts
        found = False
        # Counted while open: the block ends when the run ends, the client stops or leaves.
        with parts.metrics.subscription_open():
            async for run in follow_run(parts.store, parts.events, raw_id):
                found = True
                yield _event_node(info, run)
        if not found:
            raise GraphQLError(f"run {id!r} does not exist", extensions={"code": "NOT_FOUND"})

    @strawberry.subscription(description="Every change of every run (of one export, when given).")
    async def export_runs(
        self, info: Info, export_id: strawberry.ID | None = None
    ) -> AsyncGenerator[ExportRun, None]:
        raw_export_id = _raw_id(export_id, "Export", "exportId") if export_id else None
        parts = info.context.parts
        with parts.metrics.subscription_open():
            async with parts.events.subscribe(export_id=raw_export_id) as changes:
                async for run in changes:
                    yield _event_node(info, run)
