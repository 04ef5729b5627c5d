# mypy: disable-error-code="untyped-decorator"
# (strawberry.field/mutation with keyword arguments are untyped decorators for mypy)
"""Segments and profiles: listing segments and attribute names, loading segments and profiles."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.scalars import JSON

from service import domain
from service.api.context import Info
from service.api.errors import UserError, UserInputError, user_error
from service.api.ids import expect_global_id
from service.api.input_checks import (
    DESCRIPTION_MAX_CHARS,
    PROFILE_ID_MAX_CHARS,
    json_object_problems,
    search_text,
    text_problems,
)
from service.api.nodes import Segment
from service.api.pagination import ListConnection, page_args


@strawberry.input
class UpsertSegmentInput:
    id: strawberry.ID | None = strawberry.field(
        default=None, description="An existing segment to change; omit to create one."
    )
    name: str
    description: str | None = None


@strawberry.type
class UpsertSegmentPayload:
    segment: Segment | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class ProfileInput:
    id: str = strawberry.field(description="The caller's own profile id.")
    attributes: JSON = strawberry.field(description="An object: attribute name to value.")
    segment_ids: list[strawberry.ID] = strawberry.field(default_factory=list)


@strawberry.input
class UpsertProfilesInput:
    profiles: list[ProfileInput]


@strawberry.type
class UpsertProfilesPayload:
    upserted_count: int = 0
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class Query:
    @strawberry.field(description="Segments in creation order; search matches part of the name.")
    async def segments(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        search: str | None = None,
    ) -> ListConnection[Segment]:
        args = page_args(info.context.parts.settings, first, after)
        page = await info.context.parts.store.list_segments(
            args.first, after=args.after, search=search_text(search)
        )
        return ListConnection.of(page, Segment.of)

    @strawberry.field(description="Attribute names seen on profiles, for mapping pickers.")
    async def profile_attributes(self, info: Info) -> list[str]:
        return await info.context.parts.store.profile_attribute_names()


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def upsert_segment(self, info: Info, input: UpsertSegmentInput) -> UpsertSegmentPayload:
        segment = await _upsert_segment(info, input)
        return UpsertSegmentPayload(segment=Segment.of(segment))

    @strawberry.mutation(
        description="Insert or replace profiles by id; nothing is written when any is invalid."
    )
    async def upsert_profiles(
        self, info: Info, input: UpsertProfilesInput
    ) -> UpsertProfilesPayload:
        profiles = await _checked_profiles(info, input)
        count = await info.context.parts.store.upsert_profiles(profiles)
        return UpsertProfilesPayload(upserted_count=count)


async def _upsert_segment(info: Info, input: UpsertSegmentInput) -> domain.Segment:
    store = info.context.parts.store
    name = input.name.strip()
    if not name:
        raise UserInputError("name", "a segment needs a name", "REQUIRED")
    problems = text_problems(name, ["name"], "a segment name")
    if input.description is not None:
        problems += text_problems(
            input.description, ["description"], "a segment description", DESCRIPTION_MAX_CHARS
        )
    if problems:
        raise UserInputError.of(problems)
    now = domain.utcnow()
    if input.id is None:
        segment = domain.Segment(
            id=domain.new_id(),
            name=name,
            description=input.description,
            created_at=now,
            updated_at=now,
        )
    else:
        raw_id = expect_global_id(input.id, "Segment", "id")
        existing = await store.get_segment(raw_id)
        if existing is None:
            raise UserInputError("id", f"segment {input.id!r} does not exist", "NOT_FOUND")
        segment = domain.Segment(
            id=existing.id,
            name=name,
            description=input.description,
            created_at=existing.created_at,
            updated_at=now,
        )
    try:
        await store.save_segment(segment)
    except ValueError as exc:
        # The store refuses a second segment with the same name.
        raise UserInputError("name", f"a segment named {name!r} exists already", "TAKEN") from exc
    return segment


async def _checked_profiles(info: Info, input: UpsertProfilesInput) -> list[domain.Profile]:
    limit = info.context.parts.settings.upsert_profiles_max
    if len(input.profiles) > limit:
        raise UserInputError(
            "profiles",
            f"at most {limit} profiles per call, got {len(input.profiles)}",
            "TOO_MANY",
        )
    errors: list[UserError] = []
    seen: set[str] = set()
    wanted_segments: dict[str, list[tuple[int, int, str]]] = {}
    profiles: list[domain.Profile] = []
    for index, item in enumerate(input.profiles):
        where = ["profiles", str(index)]
        if not item.id.strip():
            errors.append(
                user_error([*where, "id"], f"profile {index} has an empty id", "REQUIRED")
            )
        elif item.id in seen:
            errors.append(
                user_error([*where, "id"], f"profile id {item.id!r} is given twice", "DUPLICATE")
            )
        else:
            what = f"profile {index}'s id"
            errors.extend(text_problems(item.id, [*where, "id"], what, PROFILE_ID_MAX_CHARS))
        seen.add(item.id)
        attributes: Any = item.attributes
        if not isinstance(attributes, dict):
            errors.append(
                user_error(
                    [*where, "attributes"],
                    f"profile {index}: attributes must be an object, "
                    f"not {type(attributes).__name__}",
                    "NOT_AN_OBJECT",
                )
            )
            attributes = {}
        errors.extend(
            json_object_problems(attributes, [*where, "attributes"], f"profile {index}'s attribute")
        )
        segment_ids: list[str] = []
        for position, global_id in enumerate(item.segment_ids):
            try:
                raw = expect_global_id(global_id, "Segment", "segmentIds")
            except UserInputError as exc:
                errors.append(
                    user_error(
                        [*where, "segmentIds", str(position)],
                        f"profile {index}: {exc.errors[0].message}",
                        "INVALID_ID",
                    )
                )
                continue
            wanted_segments.setdefault(raw, []).append((index, position, global_id))
            segment_ids.append(raw)
        profiles.append(domain.Profile(id=item.id, attributes=attributes, segment_ids=segment_ids))
    if wanted_segments:
        found = await info.context.parts.store.get_segments(list(wanted_segments))
        for missing in set(wanted_segments) - {s.id for s in found}:
            for index, position, given in wanted_segments[missing]:
                errors.append(
                    user_error(
                        ["profiles", str(index), "segmentIds", str(position)],
                        f"profile {index}: segment {given!r} does not exist",
                        "NOT_FOUND",
                    )
                )
    if errors:
        raise UserInputError.of(errors)
    return profiles
