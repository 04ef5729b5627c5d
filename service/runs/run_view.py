"""What ``segport run --follow`` shows of a run, derived from what the API exposes.

The API gives a run's status, progress, counts and message; from them:

- the **phase**: queued, reading, sending, confirming (the destination has not
  accounted for every contact sent yet), waiting (the run's message says why:
  a rate limit, a retry, a queue that does not answer), then the outcome;
- how far it is, counting both halves of the work, so a run whose profiles are
  all read and sent is not at 100 % while the destination still confirms: each
  profile is read (or skipped), and each contact sent is accounted for;
- a summary in words, and how to see the records left out.

Runs are the JSON of the ``exportRun`` subscription (camelCase keys).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ALMOST_DONE = 0.99
"""The most a run shows before it has succeeded."""

SUMMARY_WORDS = (
    ("profilesRead", "profiles read"),
    ("contactsSent", "contacts sent"),
    ("skippedUnchanged", "unchanged since the destination confirmed them (not sent)"),
    ("skippedInvalid", "skipped as invalid"),
    ("skippedDuplicate", "skipped as duplicates"),
    ("acceptedByDestination", "accepted by the destination"),
    ("rejectedByDestination", "rejected by the destination"),
    ("cannotAddToList", "not added to the list (e.g. unsubscribed)"),
    ("removedFromList", "removed from the list (left the segments)"),
    ("removalsFailed", "removals the destination refused"),
    ("fieldWarnings", "optional values left out of contacts sent (field warnings)"),
)
"""The counts in the order and words of the summary."""

LEFT_OUT = (
    "skippedInvalid",
    "skippedDuplicate",
    "rejectedByDestination",
    "cannotAddToList",
    "removalsFailed",
)

RUN_ERRORS = """
query RunErrors($id: ID!, $first: Int!) {
  node(id: $id) { ... on ExportRun { errors(first: $first) { profileId field code message } } }
}
"""
"""The sampled errors of a run (by profile: field, code, reason), as the CLI asks for them."""


def _count(counts: Mapping[str, Any], name: str) -> int:
    return int(counts.get(name) or 0)


def accounted_for(counts: Mapping[str, Any]) -> int:
    """Contacts sent that the destination has accepted, rejected or could not add."""
    return sum(
        _count(counts, name)
        for name in ("acceptedByDestination", "rejectedByDestination", "cannotAddToList")
    )


def shown_fraction(run: Mapping[str, Any]) -> float:
    """How far the run is, 0..1: reading and confirming count half each; 1 only on success."""
    if run.get("status") == "SUCCEEDED":
        return 1.0
    counts = run.get("counts") or {}
    total = _count(counts, "profilesTotal")
    if total == 0:
        return 0.0
    skipped = _count(counts, "skippedInvalid") + _count(counts, "skippedDuplicate")
    confirmed = min(accounted_for(counts), _count(counts, "contactsSent"))
    done = _count(counts, "profilesRead") + skipped + confirmed
    return min(ALMOST_DONE, done / (2 * total))


@dataclass(frozen=True, slots=True)
class Phase:
    name: str
    """queued, reading, sending, confirming, waiting, finishing, or the outcome (lower case)."""
    why: str | None = None

    def __str__(self) -> str:
        return self.name if self.why is None else f"{self.name}: {self.why}"


class PhaseTracker:
    """Tells the phase of each state of one run, in order.

    A run keeps its last message until it ends, so a message means "waiting" only
    while the counts stand still after it arrived; once they move on, the run is
    back at work (the message is still shown, as the last word from the run).
    """

    def __init__(self) -> None:
        self._message: str | None = None
        self._counts_then: Mapping[str, Any] | None = None

    def phase(self, run: Mapping[str, Any]) -> Phase:
        status = str(run.get("status"))
        message = run.get("message")
        counts = run.get("counts") or {}
        if message != self._message:
            self._message, self._counts_then = message, counts
        if status == "QUEUED":
            return Phase("queued", message)
        if status != "RUNNING":
            return Phase(status.lower(), message)
        if message and counts == self._counts_then:
            return Phase("waiting", message)
        read, total = _count(counts, "profilesRead"), _count(counts, "profilesTotal")
        if read == 0:
            return Phase("reading")
        if read < total:
            return Phase("sending")
        if accounted_for(counts) < _count(counts, "contactsSent"):
            return Phase("confirming", "the destination is still processing contacts sent")
        return Phase("finishing")


def detail(run: Mapping[str, Any]) -> str:
    """One line of counts for the progress display."""
    counts = run.get("counts") or {}
    return (
        f"{_count(counts, 'profilesRead')} of {_count(counts, 'profilesTotal')} read, "
        f"{_count(counts, 'contactsSent')} sent, {accounted_for(counts)} confirmed"
    )


def summary(counts: Mapping[str, Any]) -> list[str]:
    """The counts in words, one per line, aligned."""
    named = [("profilesTotal", "profiles in the segments"), *SUMMARY_WORDS]
    width = max(len(str(_count(counts, name))) for name, _ in named)
    return [f"{_count(counts, name):>{width}} {words}" for name, words in named]


def left_out(counts: Mapping[str, Any]) -> int:
    """Profiles skipped or contacts the destination did not take."""
    return sum(_count(counts, name) for name in LEFT_OUT)


def errors_hint(run_id: str) -> str:
    """How to read a run's whole error sample."""
    return (
        "The run keeps a sample of up to 100 of them, with profile id, field, code and "
        f'reason: query {{ node(id: "{run_id}") {{ ... on ExportRun {{ errors(first: 100) '
        "{ profileId field code message } } } }"
    )
