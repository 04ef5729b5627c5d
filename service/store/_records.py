"""Conversion between domain records and plain documents, shared by both store adapters.

A *document* is a dict of JSON-like values (str, int, float, bool, None, lists,
dicts) plus timezone-aware ``datetime`` objects at the top level. MongoDB stores
documents as they are; SQLite spreads the top-level keys over columns, encoding
nested values as JSON and datetimes as ISO-8601 text. Enums become their values
so that neither database ever sees a Python-only type.

Some documents carry *derived* fields next to the record's own (a folded name
for search): stored so the database can index them, never read back. Run
documents are in :mod:`service.store._run_records`.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from service.domain import (
    Connection,
    ConnectionStatus,
    ConnectionUsableBy,
    Export,
    ExportSchedule,
    FieldMapping,
    Frequency,
    OAuthState,
    Profile,
    Recurrence,
    RefreshSchedule,
    ScheduleMode,
    Segment,
    SyncMode,
)
from service.store.rules import folded

Document = dict[str, Any]


def as_utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive datetime is taken to be UTC already (as PyMongo does)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def optional_utc(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


# -- profiles ------------------------------------------------------------

# Datetimes and dataclasses are refused rather than silently turned into text:
# attributes are plain JSON, and read back the same from either store.
_STRICT_JSON = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def checked_profiles(profiles: Sequence[Profile]) -> list[tuple[Profile, str]]:
    """Profiles ready to write, each with its attributes as JSON text; one per id.

    The last occurrence of an id wins, as if each were written in turn; a
    profile's repeated segment ids count once. Raises ``ValueError`` naming the
    profile when its id, segment ids or attributes are not acceptable, before
    anything is written.
    """
    latest: dict[str, tuple[Profile, str]] = {}
    for profile in profiles:
        if not isinstance(profile.id, str) or not profile.id:
            raise ValueError(f"profile id must be a non-empty string, got {profile.id!r}")
        if not isinstance(profile.attributes, dict):
            raise ValueError(
                f"profile {profile.id!r}: attributes must be an object, got {profile.attributes!r}"
            )
        bad = [s for s in profile.segment_ids if not isinstance(s, str) or not s]
        if bad:
            raise ValueError(
                f"profile {profile.id!r}: segment ids must be non-empty strings, got {bad[0]!r}"
            )
        try:
            attributes = orjson.dumps(profile.attributes, option=_STRICT_JSON).decode()
        except TypeError as exc:  # orjson.JSONEncodeError
            raise ValueError(
                f"profile {profile.id!r}: attributes must be plain JSON values ({exc})"
            ) from exc
        segment_ids = list(dict.fromkeys(profile.segment_ids))
        latest[profile.id] = (Profile(profile.id, profile.attributes, segment_ids), attributes)
    return list(latest.values())


# -- segments ------------------------------------------------------------


def segment_to_doc(segment: Segment) -> Document:
    return {
        "id": segment.id,
        "name": segment.name,
        "name_folded": folded(segment.name),  # derived: what name search compares
        "description": segment.description,
        "created_at": as_utc(segment.created_at),
        "updated_at": as_utc(segment.updated_at),
    }


def segment_from_doc(doc: Mapping[str, Any]) -> Segment:
    return Segment(
        id=doc["id"],
        name=doc["name"],
        description=doc["description"],
        created_at=as_utc(doc["created_at"]),
        updated_at=as_utc(doc["updated_at"]),
    )


# -- connections ---------------------------------------------------------


def connection_to_doc(connection: Connection) -> Document:
    return {
        "id": connection.id,
        "display_name": connection.display_name,
        "destination_type": connection.destination_type,
        "usable_by": connection.usable_by.value,
        "status": connection.status.value,
        "created_by": connection.created_by,
        "created_at": as_utc(connection.created_at),
        "updated_at": as_utc(connection.updated_at),
        "settings": dict(connection.settings),
        "credentials": connection.credentials,
        "account": connection.account,
        "export_user": connection.export_user,
        "data_privacy_accepted_by": connection.data_privacy_accepted_by,
        "data_privacy_accepted_at": optional_utc(connection.data_privacy_accepted_at),
        "status_message": connection.status_message,
        "account_id": connection.account_id,
        "auth_kind": connection.auth_kind,
    }


def usable_by_values(usable_by: Sequence[ConnectionUsableBy]) -> list[str]:
    """Who may use a connection (or their values), as stored."""
    return [ConnectionUsableBy(u).value for u in usable_by]


def connection_from_doc(doc: Mapping[str, Any]) -> Connection:
    return Connection(
        id=doc["id"],
        display_name=doc["display_name"],
        destination_type=doc["destination_type"],
        usable_by=ConnectionUsableBy(doc["usable_by"]),
        status=ConnectionStatus(doc["status"]),
        created_by=doc["created_by"],
        created_at=as_utc(doc["created_at"]),
        updated_at=as_utc(doc["updated_at"]),
        settings=dict(doc["settings"] or {}),
        credentials=doc["credentials"],
        account=doc["account"],
        export_user=doc["export_user"],
        data_privacy_accepted_by=doc["data_privacy_accepted_by"],
        data_privacy_accepted_at=optional_utc(doc["data_privacy_accepted_at"]),
        status_message=doc["status_message"],
        account_id=doc.get("account_id"),
        # Rows and documents stored before auth kinds were recorded have none.
        auth_kind=doc.get("auth_kind"),
    )


# -- schedules -----------------------------------------------------------


def recurrence_to_doc(recurrence: Recurrence) -> Document:
    return {
        "frequency": recurrence.frequency.value,
        "times": list(recurrence.times),
        "timezone": recurrence.timezone,
        "weekdays": list(recurrence.weekdays),
    }


def recurrence_from_doc(doc: Mapping[str, Any]) -> Recurrence:
    return Recurrence(
        frequency=Frequency(doc["frequency"]),
        times=list(doc["times"]),
        timezone=doc["timezone"],
        weekdays=list(doc.get("weekdays") or []),
    )


def schedule_to_doc(schedule: ExportSchedule) -> Document:
    return {
        "mode": schedule.mode.value,
        "recurrence": None
        if schedule.recurrence is None
        else recurrence_to_doc(schedule.recurrence),
    }


def schedule_from_doc(doc: Mapping[str, Any]) -> ExportSchedule:
    recurrence = doc.get("recurrence")
    return ExportSchedule(
        mode=ScheduleMode(doc["mode"]),
        recurrence=None if recurrence is None else recurrence_from_doc(recurrence),
    )


def refresh_schedule_to_doc(schedule: RefreshSchedule) -> Document:
    return {
        "enabled": schedule.enabled,
        "recurrence": recurrence_to_doc(schedule.recurrence),
        "updated_by": schedule.updated_by,
        "updated_at": optional_utc(schedule.updated_at),
    }


def refresh_schedule_from_doc(doc: Mapping[str, Any]) -> RefreshSchedule:
    return RefreshSchedule(
        enabled=bool(doc["enabled"]),
        recurrence=recurrence_from_doc(doc["recurrence"]),
        updated_by=doc["updated_by"],
        updated_at=optional_utc(doc["updated_at"]),
    )


# -- exports -------------------------------------------------------------


def export_to_doc(export: Export) -> Document:
    return {
        "id": export.id,
        "display_name": export.display_name,
        "display_name_folded": folded(export.display_name),  # derived: for name search
        "connection_id": export.connection_id,
        "destination_type": export.destination_type,
        "settings": dict(export.settings),
        "field_mapping": [{"source": m.source, "target": m.target} for m in export.field_mapping],
        "segment_ids": list(export.segment_ids),
        "schedule": schedule_to_doc(export.schedule),
        "created_by": export.created_by,
        "created_at": as_utc(export.created_at),
        "updated_at": as_utc(export.updated_at),
        "sync_mode": export.sync_mode.value,
    }


def export_from_doc(doc: Mapping[str, Any]) -> Export:
    return Export(
        id=doc["id"],
        display_name=doc["display_name"],
        connection_id=doc["connection_id"],
        destination_type=doc["destination_type"],
        settings=dict(doc["settings"] or {}),
        field_mapping=[
            FieldMapping(source=m["source"], target=m["target"]) for m in doc["field_mapping"]
        ],
        segment_ids=list(doc["segment_ids"]),
        schedule=schedule_from_doc(doc["schedule"]),
        created_by=doc["created_by"],
        created_at=as_utc(doc["created_at"]),
        updated_at=as_utc(doc["updated_at"]),
        # Exports stored before sync modes existed keep sending everything.
        sync_mode=SyncMode(doc.get("sync_mode") or SyncMode.SEND_ALL),
    )


# -- oauth states --------------------------------------------------------


def oauth_state_to_doc(state: OAuthState) -> Document:
    return {
        "state": state.state,
        "connection_id": state.connection_id,
        "user": state.user,
        "code_verifier": state.code_verifier,
        "redirect_uri": state.redirect_uri,
        "expires_at": as_utc(state.expires_at),
        "created_at": as_utc(state.created_at),
        "allow_account_change": state.allow_account_change,
    }


def oauth_state_from_doc(doc: Mapping[str, Any]) -> OAuthState:
    return OAuthState(
        state=doc["state"],
        connection_id=doc["connection_id"],
        user=doc["user"],
        code_verifier=doc["code_verifier"],
        redirect_uri=doc["redirect_uri"],
        expires_at=as_utc(doc["expires_at"]),
        created_at=as_utc(doc["created_at"]),
        allow_account_change=bool(doc.get("allow_account_change") or False),
    )


def pack_key_ids(key_ids: Sequence[int]) -> bytes:
    """Signed 64-bit key ids as bytes, 8 each, little-endian (the same on every machine)."""
    packed = array("q", key_ids)
    if sys.byteorder == "big":
        packed.byteswap()
    return packed.tobytes()


def unpack_key_ids(data: bytes) -> list[int]:
    """The key ids of :func:`pack_key_ids`; ValueError if ``data`` is not whole ids."""
    if len(data) % 8:
        raise ValueError(f"{len(data)} bytes are not whole 8-byte key ids")
    unpacked = array("q")
    unpacked.frombytes(data)
    if sys.byteorder == "big":
        unpacked.byteswap()
    return unpacked.tolist()
