"""A page's nested fields answer from what the page read for all its nodes (issue 14).

``exports``, ``exportRuns`` and ``node`` read, once for the page and only for
the fields asked for, what their nodes' nested fields show
(:mod:`service.api.page_reads`); the nodes' fields then answer without reading.
The answers must be those the fields give when they read for themselves, for
every role (connections hidden from contributors, exports they may or may not
edit, detached exports, exports with no run yet).
"""

from __future__ import annotations

from typing import Any

import pytest

from service.api import context as request_context
from service.api.ids import from_global_id
from service.api.page_reads import Selected
from service.domain import ExportRunTrigger, Profile
from tests.api.conftest import ApiClient
from tests.api.operations import CREATE_EXPORT, export_input, make_connection, make_segment
from tests.api.test_batched_page_reads import READS
from tests.api.test_batched_reads import count_calls

NODE_FIELDS = """
  id displayName attached canEdit nextRunAt
  connection { id displayName ready }
  segments { id name memberCount }
  lastRun { id status trigger }
"""
EXPORTS_PAGE = "{ exports(first: 5) { totalCount edges { cursor node { FIELDS } } } }"
RUNS_PAGE = "{ exportRuns(first: 5) { edges { node { id status export { FIELDS } } } } }"
RUN_NODE = "query($id: ID!) { node(id: $id) { id ... on ExportRun { export { FIELDS } } } }"
EXPORT_NODE = "query($id: ID!) { node(id: $id) { ... on Export { FIELDS } } }"
EXPORTS_PAGE, RUNS_PAGE, RUN_NODE, EXPORT_NODE = (
    query.replace("FIELDS", NODE_FIELDS)
    for query in (EXPORTS_PAGE, RUNS_PAGE, RUN_NODE, EXPORT_NODE)
)
DETACH = """mutation($id: ID!) { detachConnection(input: {exportId: $id}) {
  userErrors { code } } }"""
CALLERS = [("admin", "ada"), ("contributor", "cody"), ("contributor", "carla"), ("viewer", "vic")]


async def as_user(
    api: ApiClient, role: str, sub: str, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    body = await api.post(query, variables, authorization=f"Bearer {api.token(role, sub)}")
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


async def a_mixed_page(api: ApiClient) -> dict[str, str]:
    """Five exports: on a shared connection (by an admin, by cody), on an admins-only one,
    detached, and one with no run; four with a run. Returns names to global ids."""
    shared = await make_connection(api, "Shared")
    admins_only = await make_connection(api, "Admins only", usable_by="ADMINS")
    segments = [await make_segment(api, f"Segment {i}") for i in range(3)]
    raw = [from_global_id(s)[1] for s in segments]
    await api.services.store.upsert_profiles(
        [Profile(f"p{i}", {}, raw[: 1 + i % 3]) for i in range(7)]
    )
    made = {}
    for name, role, sub, connection, segment_ids in [
        ("shared by ada", "admin", "ada", shared, segments[:2]),
        ("shared by cody", "contributor", "cody", shared, segments[1:]),
        ("admins only", "admin", "ada", admins_only, [segments[2]]),
        ("detached", "contributor", "cody", shared, [segments[0]]),
        ("no run", "admin", "ada", shared, segments),
    ]:
        data = await as_user(
            api, role, sub, CREATE_EXPORT, {"input": export_input(connection, segment_ids)}
        )
        assert data["createExport"]["userErrors"] == [], data
        made[name] = data["createExport"]["export"]["id"]
    await api.services.queue.aclose()  # the runs stay QUEUED: this test only reads them
    for name, export_id in made.items():
        if name != "no run":
            await api.services.runs.request_run(
                from_global_id(export_id)[1], ExportRunTrigger.ON_DEMAND, "ada"
            )
    await as_user(api, "admin", "ada", DETACH, {"id": made["detached"]})
    return made


def reading_nothing_for_the_page(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every nested field reads for itself, as before the page's reads."""
    monkeypatch.setattr(Selected, "names", lambda self: set())


def no_field_reads_for_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-field loaders fail: a field that reads for itself fails the operation."""

    async def refuse(*args: Any) -> Any:
        raise AssertionError("a field read for itself")

    for name in ("_load_segments", "_load_last_runs", "_load_member_counts", "_load_exports"):
        monkeypatch.setattr(request_context, name, refuse)


async def answers(api: ApiClient, made: dict[str, str]) -> dict[tuple[str, str], Any]:
    """Each caller's answers to the three pages and to ``node`` of each export."""
    runs = await as_user(api, "admin", "ada", RUNS_PAGE)
    run_id = runs["exportRuns"]["edges"][0]["node"]["id"]
    found: dict[tuple[str, str], Any] = {}
    for role, sub in CALLERS:
        found[sub, "exports"] = await as_user(api, role, sub, EXPORTS_PAGE)
        found[sub, "runs"] = await as_user(api, role, sub, RUNS_PAGE)
        found[sub, "run"] = await as_user(api, role, sub, RUN_NODE, {"id": run_id})
        for name, export_id in made.items():
            found[sub, name] = await as_user(api, role, sub, EXPORT_NODE, {"id": export_id})
    return found


def by_name(page: dict[str, Any], made: dict[str, str]) -> dict[str, dict[str, Any]]:
    nodes = {edge["node"]["id"]: edge["node"] for edge in page["exports"]["edges"]}
    return {name: nodes[export_id] for name, export_id in made.items()}


async def test_the_pages_answer_as_the_fields_reading_for_themselves_for_every_role(
    api: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = await a_mixed_page(api)

    with monkeypatch.context() as patched:
        no_field_reads_for_itself(patched)
        from_the_pages = await answers(api, made)
    with monkeypatch.context() as patched:
        reading_nothing_for_the_page(patched)
        by_each_field = await answers(api, made)

    assert from_the_pages == by_each_field
    # The answers differ by role where the rules say they do.
    ada, cody, carla, vic = (by_name(from_the_pages[sub, "exports"], made) for _, sub in CALLERS)
    assert ada["admins only"]["connection"]["displayName"] == "Admins only"
    assert cody["admins only"]["connection"] is None
    assert [page["shared by ada"]["canEdit"] for page in (ada, cody, carla, vic)] == [
        True,
        True,
        True,
        False,
    ]
    assert [page["admins only"]["canEdit"] for page in (ada, cody, vic)] == [True, False, False]
    assert [page["detached"]["canEdit"] for page in (ada, cody, carla)] == [True, True, False]
    assert ada["detached"]["connection"] is None
    assert ada["no run"]["lastRun"] is None
    assert ada["shared by cody"]["lastRun"]["status"] == "QUEUED"
    assert [s["memberCount"] for s in ada["no run"]["segments"]] == [7, 4, 2]
    run = from_the_pages["vic", "run"]["node"]  # the newest run: the detached export's
    assert run["export"]["id"] == made["detached"]
    assert [s["memberCount"] for s in run["export"]["segments"]] == [7]


async def test_a_page_reads_only_what_its_fields_ask_for(
    api: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await a_mixed_page(api)
    calls = count_calls(monkeypatch, api.services.store, READS)

    await api.data("{ exports { edges { node { id displayName destinationType { key } } } } }")
    assert calls == {}

    # Fragments, inline fragments and aliases count; each kind is read once.
    data = await api.data(
        """
        query { exports { edges { node { ...Counts ... on Export { last: lastRun { id } } } } } }
        fragment Counts on Export { s: segments { ... on Segment { n: memberCount } } }
        """
    )
    assert calls == {"get_segments": 1, "segment_member_counts": 1, "latest_runs": 1}
    counts = [[s["n"] for s in edge["node"]["s"]] for edge in data["exports"]["edges"]]
    assert counts == [[7, 4], [4, 2], [2], [7], [7, 4, 2]]

    calls.clear()
    await api.data("{ exportRuns { edges { node { id export { displayName } } } } }")
    assert calls == {"get_exports": 1}
