"""A page of exports reads its segments and last runs in one query each, not one per export."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from service.api.ids import from_global_id
from service.domain import ExportRunTrigger
from tests.api.conftest import MAX_PAGE_SIZE, ApiClient
from tests.api.operations import make_connection, make_export, make_segment

LIST = """
{ exports(first: %d) { edges { node { id segments { name } lastRun { status } } } } }
"""


def count_calls(monkeypatch: pytest.MonkeyPatch, store: Any, names: list[str]) -> Counter[str]:
    calls: Counter[str] = Counter()
    for name in names:
        real: Callable[..., Any] = getattr(store, name)

        async def counted(*args: Any, _name: str = name, _real: Any = real, **kw: Any) -> Any:
            calls[_name] += 1
            return await _real(*args, **kw)

        monkeypatch.setattr(store, name, counted)
    return calls


async def test_segments_and_last_runs_of_a_page_are_read_in_one_query_each(
    api: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    connection = await make_connection(api)
    segments = [await make_segment(api, f"Segment {i}") for i in range(3)]
    exports = [await make_export(api, connection, segments[i % 3]) for i in range(MAX_PAGE_SIZE)]
    runs = api.services.runs
    await api.services.queue.aclose()  # the runs stay QUEUED: this test only reads them
    for export in exports[:3]:
        await runs.request_run(from_global_id(export)[1], ExportRunTrigger.ON_DEMAND, "admin-user")
    calls = count_calls(monkeypatch, api.services.store, ["get_segments", "latest_runs"])

    data = await api.data(LIST % MAX_PAGE_SIZE, role="viewer")

    nodes = [edge["node"] for edge in data["exports"]["edges"]]
    assert len(nodes) == MAX_PAGE_SIZE
    assert {n["id"] for n in nodes if n["lastRun"] is not None} == set(exports[:3])
    assert {n["segments"][0]["name"] for n in nodes} == {"Segment 0", "Segment 1", "Segment 2"}
    assert calls == {"get_segments": 1, "latest_runs": 1}
