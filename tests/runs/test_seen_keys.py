"""The run's de-duplication set: a set's answers, kept as fingerprints in one flat table."""

from __future__ import annotations

from unittest.mock import patch

from hypothesis import given, settings
from hypothesis import strategies as st

from service.runs import mapping
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


def take_as_a_set_would(keys: SeenKeys, chunks: list[list[str]]) -> set[str]:
    """Takes each chunk at once, checking each answer against a set's; returns the set."""
    reference: set[str] = set()
    for chunk in chunks:
        expected = []
        for key in chunk:
            expected.append(key not in reference)
            reference.add(key)
        assert keys.add_many(chunk) == expected
    return reference


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.sampled_from("abcdefgh") | st.text(max_size=8), max_size=40)))
def test_chunks_taken_at_once_behave_exactly_like_one_key_at_a_time(
    chunks: list[list[str]],
) -> None:
    keys = SeenKeys()
    reference = take_as_a_set_would(keys, chunks)
    assert len(keys) == len(reference)
    keys.close()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.text(max_size=6), max_size=40)), st.lists(st.text(max_size=6)))
def test_exact_when_many_keys_share_a_slot(chunks: list[list[str]], asked: list[str]) -> None:
    """Every key in one of four neighbouring slots (distinct fingerprints, alike modulo
    the table's size): nearly every key probes past others, and still every answer is a
    set's."""
    numbers: dict[str, int] = {}

    def crowded(salted_key: str) -> int:
        number = numbers.setdefault(salted_key, len(numbers) + 1)
        return (number << 32) | (hash(salted_key) & 3)

    with patch.object(mapping, "_fingerprint", crowded):
        keys = SeenKeys()
        reference = take_as_a_set_would(keys, chunks)
        assert [key in keys for key in asked] == [key in reference for key in asked]
        assert len(keys) == len(reference)
        keys.close()


def test_the_table_grows_and_forgets_nothing() -> None:
    keys = SeenKeys()
    emails = [f"person{i}@example.com" for i in range(200_000)]  # the table doubles twice
    chunks = [emails[start : start + 400] for start in range(0, len(emails), 400)]
    assert all(all(keys.add_many(chunk)) for chunk in chunks)
    assert not any(any(keys.add_many(chunk)) for chunk in chunks)
    assert len(keys) == 200_000
    assert "person199999@example.com" in keys
    assert "someone.else@example.com" not in keys
    keys.close()


def test_each_set_fingerprints_a_key_its_own_way() -> None:
    """The salt differs from set to set (from run to run), so two keys whose fingerprints
    happen to match in one run do not match in the next, even with a fixed hash seed."""
    given: list[str] = []

    def recording(salted_key: str) -> int:
        given.append(salted_key)
        return (hash(salted_key) & 0xFFFF) or 1

    with patch.object(mapping, "_fingerprint", recording):
        first, second = SeenKeys(), SeenKeys()
        assert first.add_if_new("person@example.com")
        assert second.add_if_new("person@example.com")
    assert given[0] != given[1]
    assert all(salted.endswith("person@example.com") for salted in given)
