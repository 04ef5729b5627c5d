"""The domain: the records segport keeps and the rules of time that belong to them.

The bottom layer: it imports nothing else of ``service``, and every other
layer may import it. :mod:`service.domain.model` holds the records,
:mod:`service.domain.recurrence` parses refresh schedules.
"""

from service.domain.model import (
    ACTIVE_RUN_STATUSES,
    RUN_ERROR_SAMPLE_SIZE,
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
    Profile,
    Recurrence,
    RefreshSchedule,
    Role,
    RunCounts,
    RunError,
    ScheduleMode,
    Segment,
    new_id,
    utcnow,
)

__all__ = [
    "ACTIVE_RUN_STATUSES",
    "RUN_ERROR_SAMPLE_SIZE",
    "Connection",
    "ConnectionStatus",
    "ConnectionUsableBy",
    "Export",
    "ExportRun",
    "ExportRunStatus",
    "ExportRunTrigger",
    "ExportSchedule",
    "FieldMapping",
    "Frequency",
    "OAuthState",
    "Profile",
    "Recurrence",
    "RefreshSchedule",
    "Role",
    "RunCounts",
    "RunError",
    "ScheduleMode",
    "Segment",
    "new_id",
    "utcnow",
]
