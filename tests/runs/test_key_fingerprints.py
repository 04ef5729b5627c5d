"""The run's de-duplication set: exact membership in a compact table."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from service.runs.mapping import KeyFingerprints


def test_keys_are_members_once_added_and_others_are_not() -> None:
    keys = KeyFingerprints(capacity=4)  # tiny, so the table grows several times
    emails = [f"person{i}@example.com" for i in range(10_000)]
    for email in emails[::2]:
        keys.add(email)

    assert len(keys) == 5_000
    assert all(email in keys for email in emails[::2])
    assert not any(email in keys for email in emails[1::2])


def test_adding_a_key_twice_counts_it_once() -> None:
    keys = KeyFingerprints()
    keys.add("ana@example.com")
    keys.add("ana@example.com")
    assert len(keys) == 1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=30)), st.lists(st.text(max_size=30)))
def test_behaves_exactly_like_a_set_of_strings(added: list[str], probed: list[str]) -> None:
    keys = KeyFingerprints(capacity=2)
    for key in added:
        keys.add(key)
    assert len(keys) == len(set(added))
    assert [key in keys for key in added + probed] == [key in set(added) for key in added + probed]
