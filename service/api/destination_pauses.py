# mypy: disable-error-code="untyped-decorator"
# (strawberry.field/mutation with keyword arguments are untyped decorators for mypy)
"""Destination pauses: seeing and lifting what holds every run of a destination back.

When a destination says its daily quota is spent, its plugin pauses the shared rate
limiter (every process of the deployment) until it guesses the quota is back. An admin
sees those pauses (``destinationPauses``) and lifts one (``liftDestinationPause``) when
the quota was raised or the guess was wrong: the runs waiting on it try again at once
in this process, within seconds in the others (through Redis).
"""

from __future__ import annotations

from datetime import datetime

import strawberry

from service.api.context import Info
from service.api.errors import UserError, UserInputError
from service.coordination.limiter import Pause
from service.plugins.api import Destination


@strawberry.type(description="A pause of every request to one destination type.")
class DestinationPause:
    destination_type: str = strawberry.field(description="The destination type's key.")
    display_name: str
    until: datetime = strawberry.field(description="When requests may go out again (UTC).")
    reason: str = strawberry.field(description="Why, as the destination's plugin said it.")

    @classmethod
    def of(cls, destination: Destination, pause: Pause) -> DestinationPause:
        return cls(
            destination_type=destination.key,
            display_name=destination.display_name,
            until=pause.until,
            reason=pause.reason,
        )


@strawberry.input
class LiftDestinationPauseInput:
    destination_type: str = strawberry.field(description="The key of the paused destination type.")


@strawberry.type
class LiftDestinationPausePayload:
    lifted: DestinationPause | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class Query:
    @strawberry.field(
        description="The pauses in force, one per paused destination type (admins only)."
    )
    async def destination_pauses(self, info: Info) -> list[DestinationPause]:
        parts = info.context.parts
        pauses: list[DestinationPause] = []
        for destination in parts.destinations.all():
            limiter = parts.destination_access.limiters.for_destination(destination)
            pause = await limiter.pause()
            if pause is not None:
                pauses.append(DestinationPause.of(destination, pause))
        return pauses


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="End a destination type's pause now (admins only): for when its quota "
        "was raised or the pause was a wrong guess. Waiting runs resume at once."
    )
    async def lift_destination_pause(
        self, info: Info, input: LiftDestinationPauseInput
    ) -> LiftDestinationPausePayload:
        parts = info.context.parts
        destination = parts.destinations.get(input.destination_type)
        if destination is None:
            installed = ", ".join(d.key for d in parts.destinations.all()) or "none"
            raise UserInputError(
                "destinationType",
                f"unknown destination type {input.destination_type!r} (installed: {installed})",
                "UNKNOWN_DESTINATION_TYPE",
            )
        lifted = await parts.destination_access.limiters.for_destination(destination).lift_pause()
        if lifted is None:
            raise UserInputError(
                "destinationType",
                f"requests to {destination.display_name} ({destination.key!r}) are not paused",
                "NOT_PAUSED",
            )
        return LiftDestinationPausePayload(lifted=DestinationPause.of(destination, lifted))
