"""The run's de-duplication set: exact membership, kept on disk as fingerprints."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from service.runs.mapping import SeenKeys


def test_a_key_is_new_once_and_a_duplicate_afterwards() -> None:
    keys = SeenKeys()
    emails = [f"person{i}@example.com" for i in range(10_000)]

    assert all(keys.add_if_new(email) for email in emails)
    assert not any(keys.add_if_new(email) for email in emails)
    assert len(keys) == 10_000
    keys.close()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=30)))
def test_behaves_exactly_like_a_set_of_strings(added: list[str]) -> None:
    keys = SeenKeys()
    reference: set[str] = set()
    for key in added:
        assert keys.add_if_new(key) == (key not in reference)
        reference.add(key)
    assert len(keys) == len(reference)
    keys.close()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.sampled_from("abcdefgh") | st.text(max_size=8), max_size=40)))
def test_chunks_taken_at_once_behave_exactly_like_one_key_at_a_time(
    chunks: list[list[str]],
) -> None:
    keys = SeenKeys()
    reference: set[str] = set()
    for chunk in chunks:
        expected = []
        for key in chunk:
            expected.append(key not in reference)
            reference.add(key)
        assert keys.add_many(chunk) == expected
    assert len(keys) == len(reference)
    keys.close()
