# mypy: disable-error-code="untyped-decorator"
# (strawberry.field/mutation with keyword arguments are untyped decorators for mypy)
"""The system refresh schedule: reading it (everyone) and changing it (admins); the run
times any recurrence being edited would produce (for schedule editors)."""

from __future__ import annotations

from datetime import datetime

import strawberry
from graphql import GraphQLError

from service import domain
from service.api.context import Info
from service.api.descriptors import Frequency, Weekday
from service.api.errors import BAD_USER_INPUT, UserError, UserInputError, bad_user_input
from service.api.exports import RecurrenceInput, recurrence_from_input
from service.api.nodes import RefreshSchedule
from service.domain.schedule import next_due

MAX_UPCOMING_RUN_TIMES = 20


@strawberry.input(description="Omitted fields keep their current value.")
class UpdateRefreshScheduleInput:
    enabled: bool | None = None
    frequency: Frequency | None = None
    weekdays: list[Weekday] | None = strawberry.field(
        default=None, description="Required, non-empty, for WEEKLY."
    )
    times: list[str] | None = strawberry.field(
        default=None, description="1 to 4 distinct HH:MM (24-hour) times."
    )
    time_zone: str | None = strawberry.field(
        default=None, description="An IANA time zone, e.g. Europe/Paris."
    )


@strawberry.type
class RefreshSchedulePayload:
    refresh_schedule: RefreshSchedule | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class Query:
    @strawberry.field
    async def refresh_schedule(self, info: Info) -> RefreshSchedule:
        return RefreshSchedule.of(await info.context.parts.store.get_refresh_schedule())

    @strawberry.field(
        description="The next instants (UTC, in order) at which a recurrence would run, "
        "e.g. one being edited; nothing is saved. An invalid recurrence is a BAD_USER_INPUT "
        "error whose extensions.userErrors name the fields, as the mutations would."
    )
    def upcoming_run_times(
        self, info: Info, recurrence: RecurrenceInput, count: int = 5
    ) -> list[datetime]:
        if not 1 <= count <= MAX_UPCOMING_RUN_TIMES:
            raise bad_user_input(f"count must be 1 to {MAX_UPCOMING_RUN_TIMES}, not {count}")
        try:
            rule = recurrence_from_input(recurrence, ["recurrence"])
        except UserInputError as exc:
            raise GraphQLError(
                "; ".join(e.message for e in exc.errors),
                extensions={
                    "code": BAD_USER_INPUT,
                    "userErrors": [
                        {"field": e.field, "message": e.message, "code": e.code} for e in exc.errors
                    ],
                },
            ) from exc
        times: list[datetime] = []
        after = domain.utcnow()
        while len(times) < count:
            due = next_due(rule, after)
            if due is None:
                break
            times.append(due)
            after = due
        return times


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def update_refresh_schedule(
        self, info: Info, input: UpdateRefreshScheduleInput
    ) -> RefreshSchedulePayload:
        store = info.context.parts.store
        current = await store.get_refresh_schedule()
        old = current.recurrence
        merged = RecurrenceInput(
            frequency=input.frequency if input.frequency is not None else old.frequency,
            weekdays=(
                input.weekdays if input.weekdays is not None else [Weekday(d) for d in old.weekdays]
            ),
            times=input.times if input.times is not None else list(old.times),
            time_zone=input.time_zone if input.time_zone is not None else old.timezone,
        )
        recurrence = recurrence_from_input(merged, [])
        schedule = domain.RefreshSchedule(
            enabled=current.enabled if input.enabled is None else input.enabled,
            recurrence=recurrence,
            updated_by=info.context.principal.sub,
            updated_at=domain.utcnow(),
        )
        await store.save_refresh_schedule(schedule)
        return RefreshSchedulePayload(refresh_schedule=RefreshSchedule.of(schedule))
