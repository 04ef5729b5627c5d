"""The pages frontends poll read each kind of record once per operation (issue 14, item 3).

A page of exports shows segments with member counts, connections and last runs;
a page of runs shows each run's export. Each is one store call for the whole
page, however many nodes ask at once, never one per node.
"""

from __future__ import annotations

import pytest

from service.api.ids import from_global_id
from service.domain import ExportRunTrigger, Profile
from tests.api.conftest import MAX_PAGE_SIZE, ApiClient
from tests.api.operations import make_connection, make_export, make_segment
from tests.api.test_batched_reads import count_calls

EXPORTS_PAGE = """
{ exports(first: %d) { edges { node { id canEdit nextRunAt connection { displayName }
    segments { name memberCount } lastRun { status } } } } }
"""
RUNS_PAGE = "{ exportRuns(first: %d) { edges { node { id export { displayName } } } } }"
READS = [
    "get_segments",
    "segment_member_counts",
    "count_segment_members",
    "latest_runs",
    "get_connection",
    "get_refresh_schedule",
    "get_export",
    "get_exports",
]


async def test_a_page_reads_each_kind_of_record_once(
    api: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    connection = await make_connection(api)
    segments = [await make_segment(api, f"Segment {i}") for i in range(3)]
    exports = [await make_export(api, connection, segments[i % 3]) for i in range(MAX_PAGE_SIZE)]
    raw = [from_global_id(s)[1] for s in segments]
    await api.services.store.upsert_profiles(
        [Profile(f"p{i}", {}, raw[: 1 + i % 3]) for i in range(6)]
    )
    await api.services.queue.aclose()  # the runs stay QUEUED: this test only reads them
    for export in exports:
        await api.services.runs.request_run(
            from_global_id(export)[1], ExportRunTrigger.ON_DEMAND, "admin-user"
        )
    calls = count_calls(monkeypatch, api.services.store, READS)

    data = await api.data(EXPORTS_PAGE % MAX_PAGE_SIZE, role="contributor")

    counts = {
        s["name"]: s["memberCount"] for e in data["exports"]["edges"] for s in e["node"]["segments"]
    }
    assert counts == {"Segment 0": 6, "Segment 1": 4, "Segment 2": 2}
    assert all(e["node"]["connection"] is not None for e in data["exports"]["edges"])
    assert calls == {
        "get_segments": 1,
        "segment_member_counts": 1,
        "latest_runs": 1,
        "get_connection": 1,
        "get_refresh_schedule": 1,
    }

    calls.clear()
    data = await api.data(RUNS_PAGE % MAX_PAGE_SIZE, role="viewer")

    assert len(data["exportRuns"]["edges"]) == MAX_PAGE_SIZE
    assert calls == {"get_exports": 1}
