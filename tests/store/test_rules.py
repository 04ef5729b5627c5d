"""The rules both store adapters share (service.store.rules), checked on their own."""

from __future__ import annotations

from datetime import timedelta

import pytest

from service.domain import ExportRunStatus, utcnow
from service.store import rules
from service.store._paging import PageRequest
from service.store.base import ActiveRunExists, DuplicateRun


@pytest.mark.parametrize(
    ("status", "slot"),
    [
        (ExportRunStatus.QUEUED, "e1"),
        (ExportRunStatus.RUNNING, "e1"),
        (ExportRunStatus.SUCCEEDED, None),
        (ExportRunStatus.FAILED, None),
        (ExportRunStatus.CANCELLED, None),
    ],
)
def test_only_an_active_run_holds_its_exports_slot(
    status: ExportRunStatus, slot: str | None
) -> None:
    assert rules.active_export_id(status, "e1") == slot
    assert rules.active_export_id(status.value, "e1") == slot


def test_the_slot_after_changes_takes_each_part_from_the_changes_else_the_run() -> None:
    current = {"export_id": "e1", "status": ExportRunStatus.RUNNING.value}

    assert rules.active_slot_after({}, current) == "e1"
    assert rules.active_slot_after({"export_id": "e2"}, current) == "e2"
    assert rules.active_slot_after({"status": ExportRunStatus.FAILED.value}, current) is None
    assert rules.changes_move_active_slot({"status": "x"}) is True
    assert rules.changes_move_active_slot({"export_id": "x"}) is True
    assert rules.changes_move_active_slot({"message": "x"}) is False


def test_a_cancelled_queued_run_is_finished_with_its_slot_freed() -> None:
    now = utcnow()

    changes = rules.cancel_queued_run(now)

    assert changes["status"] == ExportRunStatus.CANCELLED.value
    assert changes["cancel_requested"] is True
    assert changes["finished_at"] == now
    assert changes["message"] == "Cancelled before it started."
    assert changes[rules.ACTIVE_SLOT_FIELD] is None


def test_a_unique_index_refusal_on_runs_names_the_rule_it_enforces() -> None:
    duplicate = rules.run_index_refusal(
        rules.DEDUPE_KEY_FIELD, export_id="e1", dedupe_key="k", active_run_id=None
    )
    active = rules.run_index_refusal(
        rules.ACTIVE_SLOT_FIELD, export_id="e1", dedupe_key=None, active_run_id="r1"
    )

    assert isinstance(duplicate, DuplicateRun)
    assert duplicate.dedupe_key == "k"
    assert isinstance(active, ActiveRunExists)
    assert (active.export_id, active.run_id) == ("e1", "r1")
    # The active run finished meanwhile: no error, the caller may try again.
    assert (
        rules.run_index_refusal(
            rules.ACTIVE_SLOT_FIELD, export_id="e1", dedupe_key=None, active_run_id=None
        )
        is None
    )
    assert (
        rules.run_index_refusal("_id", export_id="e1", dedupe_key="k", active_run_id="r1") is None
    )


def test_search_folds_case_including_unicode() -> None:
    assert rules.folded("Straße ÜNÏ") == rules.folded("STRASSE ünï") == "strasse ünï"


def test_sizes_below_one_are_refused_by_name() -> None:
    rules.require_at_least_one("batch_size", 1)

    with pytest.raises(ValueError, match="batch_size must be at least 1, got 0"):
        rules.require_at_least_one("batch_size", 0)


def test_items_are_cut_into_batches_of_at_most_the_size() -> None:
    assert [list(b) for b in rules.in_batches([1, 2, 3, 4, 5], 2)] == [[1, 2], [3, 4], [5]]
    assert list(rules.in_batches([], 2)) == []


def test_expired_oauth_states_are_kept_a_day() -> None:
    assert timedelta(days=1) == rules.OAUTH_STATE_GRACE


def test_a_page_request_fetches_one_row_more_than_it_returns() -> None:
    request = PageRequest(2, after="a")

    page = request.page(["b", "c", "d"], total_count=9)

    assert request.limit == 3
    assert (page.items, page.has_next_page, page.has_previous_page) == (["b", "c"], True, True)
    assert page.total_count == 9
    with pytest.raises(ValueError, match="first must be zero or more"):
        PageRequest(-1)
