"""Value types of the schema: destination types, setting specs, mappings, schedules, counts.

These are not Relay nodes: they describe or belong to a node and have no
identity of their own.
"""

from __future__ import annotations

from enum import Enum

import strawberry

from service import domain
from service.domain import (
    ConnectionStatus as ConnectionStatus,
)
from service.domain import (
    ConnectionUsableBy as ConnectionUsableBy,
)
from service.domain import (
    ExportRunStatus as ExportRunStatus,
)
from service.domain import (
    ExportRunTrigger as ExportRunTrigger,
)
from service.domain import (
    Frequency as Frequency,
)
from service.domain import (
    ScheduleMode as ScheduleMode,
)
from service.domain import (
    SyncMode as SyncMode,
)
from service.plugins.api import AuthKind as PluginAuthKind
from service.plugins.api import Destination
from service.plugins.api import MappingTarget as PluginMappingTarget
from service.plugins.api import SettingSpec as PluginSettingSpec

# The domain enums are the GraphQL enums (same names and values): registering them
# here keeps one definition of each.
for _enum in (
    ConnectionStatus,
    ConnectionUsableBy,
    ExportRunStatus,
    ExportRunTrigger,
    Frequency,
    ScheduleMode,
):
    strawberry.enum(_enum)
strawberry.enum(
    SyncMode,
    name="ExportSyncMode",
    description="What a run of the export sends: SEND_ALL every record; SEND_CHANGES only "
    "records that are new or changed since the destination last confirmed them; MIRROR as "
    "SEND_CHANGES, then removes from the list the contacts this export put there that left "
    "its segments. New exports default to SEND_CHANGES.",
)


@strawberry.enum(description="A day of the week (ISO numbering: MONDAY is 1).")
class Weekday(Enum):
    MONDAY = 1
    TUESDAY = 2
    WEDNESDAY = 3
    THURSDAY = 4
    FRIDAY = 5
    SATURDAY = 6
    SUNDAY = 7


@strawberry.type(name="SettingSpec")
class SettingSpecType:
    name: str
    label: str
    type: str
    required: bool
    secret: bool
    description: str | None
    max_length: int | None

    @classmethod
    def of(cls, spec: PluginSettingSpec) -> SettingSpecType:
        return cls(
            name=spec.name,
            label=spec.label,
            type=spec.type,
            required=spec.required,
            secret=spec.secret,
            description=spec.description,
            max_length=spec.max_length,
        )


@strawberry.type(name="MappingTarget")
class MappingTargetType:
    name: str
    label: str
    required: bool
    max_length: int | None
    kind: str

    @classmethod
    def of(cls, target: PluginMappingTarget) -> MappingTargetType:
        return cls(
            name=target.name,
            label=target.label,
            required=target.required,
            max_length=target.max_length,
            kind=target.kind,
        )


@strawberry.enum(
    description="A way to connect a destination account: OAUTH2 (the admin authorizes on the "
    "destination's page: authorizeConnection), API_KEY (a secret connection setting, checked "
    "when saved) or NONE (nothing to connect)."
)
class AuthKind(Enum):
    OAUTH2 = "oauth2"
    API_KEY = "api_key"
    NONE = "none"


AUTH_KIND_VALUES = frozenset(k.value for k in AuthKind)


@strawberry.type(description="One way a destination type can connect an account.")
class DestinationAuthKind:
    kind: AuthKind
    configured: bool = strawberry.field(
        description="Whether the server is configured for connections of this kind (e.g. "
        "OAuth2 needs a registered app's client id); createConnection refuses them otherwise "
        "(NOT_CONFIGURED)."
    )
    configuration_problem: str | None = strawberry.field(
        description="What to configure on the server (naming the variable), when not configured."
    )
    connection_settings: list[SettingSpecType] = strawberry.field(
        description="What a connection of this kind is asked for (e.g. the API key)."
    )

    @classmethod
    def of(cls, destination: Destination, kind: PluginAuthKind) -> DestinationAuthKind:
        problem = destination.configuration_problem_for(kind)
        return cls(
            kind=AuthKind(kind),
            configured=problem is None,
            configuration_problem=problem,
            connection_settings=[
                SettingSpecType.of(s) for s in destination.connection_settings_for(kind)
            ],
        )


@strawberry.type(description="One destination type an installed plugin provides.")
class DestinationType:
    key: str
    display_name: str
    auth_kind: str = strawberry.field(
        description="The way a connection connects when createConnection names none (the "
        'first of authKinds): "oauth2", "api_key" or "none".'
    )
    auth_kinds: list[DestinationAuthKind] = strawberry.field(
        description="Every way this destination can connect an account, the default first, "
        "each with whether the server is configured for it."
    )
    connection_settings: list[SettingSpecType]
    export_settings: list[SettingSpecType]
    mapping_targets: list[MappingTargetType]
    max_profiles_per_export: int | None
    installed: bool = strawberry.field(
        description="False when stored connections or exports name a destination type whose "
        "plugin is no longer installed."
    )

    @classmethod
    def of(cls, destination: Destination) -> DestinationType:
        return cls(
            key=destination.key,
            display_name=destination.display_name,
            auth_kind=destination.auth_kind,
            # A kind this segport does not know (the conformance suite names it) is left out.
            auth_kinds=[
                DestinationAuthKind.of(destination, k)
                for k in destination.auth_kinds
                if k in AUTH_KIND_VALUES
            ],
            connection_settings=[SettingSpecType.of(s) for s in destination.connection_settings],
            export_settings=[SettingSpecType.of(s) for s in destination.export_settings],
            mapping_targets=[MappingTargetType.of(t) for t in destination.mapping_targets],
            max_profiles_per_export=destination.limits.max_profiles_per_export,
            installed=True,
        )

    @classmethod
    def missing(cls, key: str) -> DestinationType:
        return cls(
            key=key,
            display_name=key,
            auth_kind="none",
            auth_kinds=[],
            connection_settings=[],
            export_settings=[],
            mapping_targets=[],
            max_profiles_per_export=None,
            installed=False,
        )


@strawberry.type
class FieldMapping:
    source: str = strawberry.field(description="A profile attribute name.")
    target: str = strawberry.field(description="A MappingTarget name of the destination.")


@strawberry.type(description="Daily or on chosen weekdays, at 1 to 4 wall-clock times.")
class Recurrence:
    frequency: Frequency
    weekdays: list[Weekday]
    times: list[str] = strawberry.field(description="HH:MM, 24-hour, in timeZone.")
    time_zone: str = strawberry.field(description="An IANA time zone, e.g. Europe/Paris.")

    @classmethod
    def of(cls, recurrence: domain.Recurrence) -> Recurrence:
        return cls(
            frequency=recurrence.frequency,
            weekdays=[Weekday(d) for d in recurrence.weekdays],
            times=list(recurrence.times),
            time_zone=recurrence.timezone,
        )


@strawberry.type
class ExportSchedule:
    mode: ScheduleMode
    recurrence: Recurrence | None = strawberry.field(description="Only for mode OWN.")

    @classmethod
    def of(cls, schedule: domain.ExportSchedule) -> ExportSchedule:
        return cls(
            mode=schedule.mode,
            recurrence=Recurrence.of(schedule.recurrence) if schedule.recurrence else None,
        )


@strawberry.type
class ExportRunCounts:
    profiles_total: int
    profiles_read: int
    contacts_sent: int
    skipped_invalid: int
    skipped_duplicate: int
    accepted_by_destination: int
    rejected_by_destination: int
    cannot_add_to_list: int
    skipped_unchanged: int = strawberry.field(
        description="Not sent: the destination already holds the record as it is."
    )
    removed_from_list: int = strawberry.field(
        description="MIRROR: contacts taken off the list (never deleted from the account)."
    )
    removals_failed: int = strawberry.field(
        description="MIRROR: removals the destination refused (sampled in errors)."
    )
    field_warnings: int = strawberry.field(
        description="Optional values the destination left out of (or shortened in) contacts "
        "that were still sent; sampled in the run's errors with the profile and field."
    )

    @classmethod
    def of(cls, counts: domain.RunCounts) -> ExportRunCounts:
        return cls(
            profiles_total=counts.profiles_total,
            profiles_read=counts.profiles_read,
            contacts_sent=counts.contacts_sent,
            skipped_invalid=counts.skipped_invalid,
            skipped_duplicate=counts.skipped_duplicate,
            accepted_by_destination=counts.accepted_by_destination,
            rejected_by_destination=counts.rejected_by_destination,
            cannot_add_to_list=counts.cannot_add_to_list,
            skipped_unchanged=counts.skipped_unchanged,
            removed_from_list=counts.removed_from_list,
            removals_failed=counts.removals_failed,
            field_warnings=counts.field_warnings,
        )


@strawberry.type
class ExportRunError:
    profile_id: str | None
    field: str | None
    code: str
    message: str
