"""The data and the operations of the API load benchmark (``bench/api_load.py``).

Everything is deterministic (fixed ids, fixed times), so segport's answer to
each operation is the same in every run and can be compared with the answer
recorded before issue 14 (``bench/api_load_reference.json``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
    Profile,
    RunCounts,
    Segment,
)
from service.domain.ids import to_global_id
from service.store.base import Store

EXPORTS = 100
SEGMENTS = 200
RUNS_PER_EXPORT = 3
PROFILES = 5000
EPOCH = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CONNECTION_ID = "bench-connection"

EXPORTS_PAGE = """
query ExportsPage {
  exports(first: 50) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges {
      cursor
      node {
        id displayName attached createdAt updatedAt canEdit
        schedule { mode }
        destinationType { key displayName installed }
        connection { id displayName ready }
        segments { id name memberCount }
        lastRun { id status trigger queuedAt finishedAt progress
                  counts { profilesTotal contactsSent acceptedByDestination } }
      }
    }
  }
}
"""

RUNS_PAGE = """
query RunsPage {
  exportRuns(first: 50) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges {
      node {
        id status trigger queuedAt startedAt finishedAt progress message
        counts { profilesTotal contactsSent acceptedByDestination }
        export { id displayName }
      }
    }
  }
}
"""

RUN_NODE = """
query RunNode($id: ID!) {
  node(id: $id) {
    id
    ... on ExportRun {
      status finishedAt counts { profilesTotal contactsSent }
      export { id displayName segments { id name memberCount } }
    }
  }
}
"""

RUN_NODE_ID = to_global_id("ExportRun", "run-0050-2")
"""A run of the 51st export (its third run)."""

SUBSCRIPTION = "subscription Watch { exportRuns { id status progress counts { contactsSent } } }"


def segment_id(index: int) -> str:
    return f"seg-{index:04d}"


def export_id(index: int) -> str:
    return f"exp-{index:04d}"


def run_id(export_index: int, number: int) -> str:
    return f"run-{export_index:04d}-{number}"


def export_segments(index: int) -> list[str]:
    """Two or three segments per export (50 exports show about 116 segments)."""
    ids = [segment_id((2 * index) % SEGMENTS), segment_id((2 * index + 1) % SEGMENTS)]
    if index % 3 == 0:
        ids.append(segment_id((7 * index + 5) % SEGMENTS))
    return list(dict.fromkeys(ids))


async def seed(store: Store) -> None:
    """100 exports on one connection, 200 segments, 5,000 profiles and 300 finished runs."""
    for i in range(SEGMENTS):
        at = EPOCH + timedelta(minutes=i)
        await store.save_segment(
            Segment(
                id=segment_id(i),
                name=f"Segment {i:03d}",
                description=None,
                created_at=at,
                updated_at=at,
            )
        )
    profiles = [
        Profile(
            id=f"p{i:06d}",
            attributes={"EmailAddress": f"person{i}@example.com", "FirstName": f"First{i}"},
            segment_ids=list(
                dict.fromkeys(
                    segment_id(s) for s in (i % SEGMENTS, (i * 7) % SEGMENTS, (i * 13) % 50)
                )
            ),
        )
        for i in range(PROFILES)
    ]
    await store.upsert_profiles(profiles)
    await store.save_connection(
        Connection(
            id=CONNECTION_ID,
            display_name="Bench account",
            destination_type="constant_contact",
            usable_by=ConnectionUsableBy.ADMINS_AND_CONTRIBUTORS,
            status=ConnectionStatus.CONNECTED,
            created_by="bench",
            created_at=EPOCH,
            updated_at=EPOCH,
        )
    )
    for i in range(EXPORTS):
        at = EPOCH + timedelta(hours=1, minutes=i)
        await store.save_export(
            Export(
                id=export_id(i),
                display_name=f"Export {i:03d}",
                connection_id=CONNECTION_ID,
                destination_type="constant_contact",
                settings={"listId": f"list-{i}"},
                field_mapping=[FieldMapping("EmailAddress", "email")],
                segment_ids=export_segments(i),
                schedule=ExportSchedule(),
                created_by="bench",
                created_at=at,
                updated_at=at,
            )
        )
        for n in range(RUNS_PER_EXPORT):
            queued = EPOCH + timedelta(days=1 + n, minutes=i)
            sent = 100 * (i + 1) + n
            await store.insert_run(
                ExportRun(
                    id=run_id(i, n),
                    export_id=export_id(i),
                    status=ExportRunStatus.SUCCEEDED,
                    trigger=ExportRunTrigger.REFRESH_SCHEDULE,
                    requested_by=None,
                    queued_at=queued,
                    started_at=queued + timedelta(seconds=5),
                    finished_at=queued + timedelta(minutes=3),
                    progress=1.0,
                    counts=RunCounts(
                        profiles_total=sent,
                        profiles_read=sent,
                        contacts_sent=sent,
                        accepted_by_destination=sent,
                    ),
                )
            )
