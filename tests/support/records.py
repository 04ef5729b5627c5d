"""Builders of valid domain records for tests: every field filled, overridable by keyword."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from service.domain import (
    Connection,
    ConnectionStatus,
    ConnectionUsableBy,
    Export,
    ExportRun,
    ExportRunStatus,
    ExportRunTrigger,
    ExportSchedule,
    FieldMapping,
    Frequency,
    OAuthState,
    Recurrence,
    ScheduleMode,
    Segment,
    new_id,
    utcnow,
)


def make_segment(**changes: Any) -> Segment:
    now = utcnow()
    segment = Segment(
        id=new_id(),
        name=f"Segment {new_id()}",
        description="People who bought twice",
        created_at=now,
        updated_at=now,
    )
    return replace(segment, **changes)


def make_connection(**changes: Any) -> Connection:
    now = utcnow()
    connection = Connection(
        id=new_id(),
        display_name="Marketing account",
        destination_type="constant_contact",
        usable_by=ConnectionUsableBy.ADMINS_AND_CONTRIBUTORS,
        status=ConnectionStatus.CONNECTED,
        created_by="alice@example.com",
        created_at=now,
        updated_at=now,
        settings={"region": "us", "nested": {"a": [1, 2]}},
        credentials="gAAAAAB-encrypted-token",
        account="Acme Inc",
        export_user="alice@example.com",
        data_privacy_accepted_by="alice@example.com",
        data_privacy_accepted_at=now,
        status_message=None,
    )
    return replace(connection, **changes)


def make_export(**changes: Any) -> Export:
    now = utcnow()
    export = Export(
        id=new_id(),
        display_name="Weekly buyers",
        connection_id=new_id(),
        destination_type="constant_contact",
        settings={"listId": "7b3b1c1e-0000-4000-8000-000000000001"},
        field_mapping=[
            FieldMapping(source="email", target="email_address"),
            FieldMapping(source="first", target="first_name"),
        ],
        segment_ids=[new_id(), new_id()],
        schedule=ExportSchedule(
            mode=ScheduleMode.OWN,
            recurrence=Recurrence(
                frequency=Frequency.WEEKLY,
                times=["06:30", "18:00"],
                timezone="Europe/Paris",
                weekdays=[1, 4],
            ),
        ),
        created_by="alice@example.com",
        created_at=now,
        updated_at=now,
    )
    return replace(export, **changes)


def make_plain_connection(destination_type: str, display_name: str, **changes: Any) -> Connection:
    """A connected connection with only what a run needs: no settings, no credentials, and
    ``admin`` as creator and export user (runs are requested by the export user)."""
    now = utcnow()
    connection = Connection(
        id=new_id(),
        display_name=display_name,
        destination_type=destination_type,
        usable_by=ConnectionUsableBy.ADMINS_AND_CONTRIBUTORS,
        status=ConnectionStatus.CONNECTED,
        created_by="admin",
        created_at=now,
        updated_at=now,
        export_user="admin",
    )
    return replace(connection, **changes)


def make_plain_export(
    connection: Connection,
    segment_ids: list[str],
    field_mapping: list[FieldMapping],
    **changes: Any,
) -> Export:
    """An export of ``segment_ids`` over ``connection`` (to its destination type) with no
    settings and no schedule of its own: what a run test starts from."""
    now = utcnow()
    export = Export(
        id=new_id(),
        display_name="Newsletter",
        connection_id=connection.id,
        destination_type=connection.destination_type,
        settings={},
        field_mapping=field_mapping,
        segment_ids=segment_ids,
        schedule=ExportSchedule(),
        created_by="alice",
        created_at=now,
        updated_at=now,
    )
    return replace(export, **changes)


def make_run(export_id: str, **changes: Any) -> ExportRun:
    run = ExportRun(
        id=new_id(),
        export_id=export_id,
        status=ExportRunStatus.QUEUED,
        trigger=ExportRunTrigger.ON_DEMAND,
        requested_by="alice@example.com",
        queued_at=utcnow(),
    )
    return replace(run, **changes)


def make_oauth_state(connection_id: str, **changes: Any) -> OAuthState:
    state = OAuthState(
        state=new_id() + new_id(),
        connection_id=connection_id,
        user="alice@example.com",
        code_verifier="v" * 64,
        redirect_uri="http://127.0.0.1:8000/oauth/callback",
        expires_at=utcnow() + timedelta(minutes=10),
    )
    return replace(state, **changes)


def ms(value: datetime) -> datetime:
    """``value`` cut to milliseconds, the precision MongoDB keeps."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000)
