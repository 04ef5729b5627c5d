"""Accounting of a finished import: outcomes always add up to the contacts sent, on the
published description's own examples and on figures that fit no reading."""

from __future__ import annotations

import pytest
from segport_constant_contact.accounting import account_import

# The published example of a contacts import's status (createCSVImportActivity_201_response).
PUBLISHED_IMPORT = {"items_total_count": 87, "person_count": 20, "error_count": 1,
                    "correctable_count": 1, "cannot_add_to_list_count": 1}  # fmt: skip
# The published example of an activity in the collection (getAllActivities_200_response).
PUBLISHED_COLLECTION = {"items_total_count": 2200, "items_completed_count": 2100,
                        "person_count": 8750, "error_count": 1, "correctable_count": 1,
                        "cannot_add_to_list_count": 1}  # fmt: skip


def test_the_published_import_example_counts_20_outcomes_for_20_contacts() -> None:
    figures = account_import(PUBLISHED_IMPORT, 20, "a1")
    assert (figures.accepted, figures.rejected, figures.cannot_add_to_list) == (17, 2, 1)
    assert figures.total == 20
    assert figures.notes == []  # the documented reading fits: nothing to say


def test_the_other_reading_is_taken_only_when_it_adds_up_and_a_sample_says_so() -> None:
    # person_count 18 + 2 refused = 20 sent: person_count left the refused ones out.
    figures = account_import({**PUBLISHED_IMPORT, "person_count": 18}, 20, "a2")
    assert (figures.accepted, figures.rejected, figures.cannot_add_to_list) == (17, 2, 1)
    [note] = figures.notes
    assert "person_count 18 read as the contacts processed" in note


def test_the_published_collection_example_is_bounded_by_the_contacts_sent() -> None:
    figures = account_import(PUBLISHED_COLLECTION, 2200, "a3")
    assert figures.total == 2200
    assert (figures.rejected, figures.cannot_add_to_list) == (2, 1)
    assert "person_count 8750 for 2200 contacts sent" in figures.notes[0]


@pytest.mark.parametrize(
    "status",
    [{}, {"person_count": 3}, {"person_count": 50, "error_count": 70},
     {"person_count": -4, "error_count": "x"}, {"cannot_add_to_list_count": 99},
     {"person_count": 10, "error_count": 4, "correctable_count": 4, "cannot_add_to_list_count": 4}],
)  # fmt: skip
def test_whatever_the_figures_the_outcomes_are_exactly_the_contacts_sent(
    status: dict[str, object],
) -> None:
    figures = account_import(status, 10, "a4")
    assert figures.total == 10
    assert min(figures.accepted, figures.rejected, figures.cannot_add_to_list) >= 0


def test_a_shortfall_is_counted_as_rejected_with_a_sample() -> None:
    figures = account_import({"person_count": 7}, 10, "a5")
    assert (figures.accepted, figures.rejected) == (7, 3)
    assert any("3 of 10 contacts sent are not accounted for" in n for n in figures.notes)


def test_without_the_count_sent_items_total_count_stands_for_it() -> None:
    figures = account_import(
        {"items_total_count": 5, "person_count": 5, "error_count": 1}, None, "a6"
    )
    assert (figures.accepted, figures.rejected, figures.total) == (4, 1, 5)
