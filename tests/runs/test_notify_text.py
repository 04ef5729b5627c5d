"""The failure webhook's wording: one period per sentence, and the API's global ids
(issue 10, item 26)."""

from __future__ import annotations

from service.domain import ExportRunStatus, RunCounts
from service.domain.ids import from_global_id
from service.runs.notify import failure_summary
from tests.support.records import make_run


def test_text_has_no_doubled_period_and_names_the_run_by_its_global_id() -> None:
    run = make_run(
        "export-1",
        id="run-1",
        status=ExportRunStatus.FAILED,
        message="Connection 'Marketing' needs re-authorization.",
        counts=RunCounts(profiles_total=10, contacts_sent=4),
    )

    body = failure_summary(run, "Weekly newsletter")

    text = body["text"]
    assert ".." not in text
    assert text == (
        f"segport: export 'Weekly newsletter' failed (run {body['runId']}, trigger "
        f"{run.trigger}): Connection 'Marketing' needs re-authorization. Sent 4 of 10 "
        "profiles before it stopped."
    )
    assert from_global_id(body["runId"]) == ("ExportRun", "run-1")
    assert from_global_id(body["exportId"]) == ("Export", "export-1")
    assert "run-1" not in text
    assert body["message"] == run.message


def test_an_export_that_is_gone_is_named_by_its_global_id() -> None:
    run = make_run("export-1", status=ExportRunStatus.FAILED, message=None)

    body = failure_summary(run, None)

    assert f"export {body['exportId']} failed" in body["text"]
    assert "no reason given. Sent" in body["text"]
    assert body["exportName"] is None
