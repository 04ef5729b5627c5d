"""What ``segport run --follow`` derives from a run's state: phase, share done, summary."""

from __future__ import annotations

from typing import Any

from service.runs.run_view import PhaseTracker, shown_fraction, summary


def state(status: str = "RUNNING", message: str | None = None, **counts: int) -> dict[str, Any]:
    base = {
        "profilesTotal": 10,
        "profilesRead": 0,
        "contactsSent": 0,
        "skippedInvalid": 0,
        "skippedDuplicate": 0,
        "acceptedByDestination": 0,
        "rejectedByDestination": 0,
        "cannotAddToList": 0,
    }
    return {"status": status, "message": message, "counts": base | counts}


def test_everything_sent_but_unconfirmed_is_not_shown_done() -> None:
    sent = state(profilesRead=10, contactsSent=9, skippedInvalid=1)
    confirmed = state(
        profilesRead=10,
        contactsSent=9,
        skippedInvalid=1,
        acceptedByDestination=8,
        cannotAddToList=1,
    )

    assert shown_fraction(sent) == 0.55
    assert shown_fraction(confirmed) < 1.0
    assert shown_fraction(state("SUCCEEDED", **confirmed["counts"])) == 1.0


def test_phases_follow_the_counts_and_a_message_means_waiting_until_counts_move() -> None:
    tracker = PhaseTracker()

    assert tracker.phase(state("QUEUED")).name == "queued"
    assert tracker.phase(state()).name == "reading"
    assert tracker.phase(state(profilesRead=4, contactsSent=4)).name == "sending"
    waiting = tracker.phase(state(message="rate limit", profilesRead=4, contactsSent=4))
    assert (waiting.name, waiting.why) == ("waiting", "rate limit")
    moved = state(message="rate limit", profilesRead=10, contactsSent=10)
    assert tracker.phase(moved).name == "confirming"
    done = state(message="rate limit", profilesRead=10, contactsSent=10, acceptedByDestination=10)
    assert tracker.phase(done).name == "finishing"
    failed = tracker.phase(state("FAILED", message="The list was deleted."))
    assert (failed.name, failed.why) == ("failed", "The list was deleted.")


def test_the_summary_names_each_count_in_words() -> None:
    lines = summary(state(profilesRead=10, contactsSent=8, skippedDuplicate=2)["counts"])

    assert lines[0] == "10 profiles in the segments"
    assert " 8 contacts sent" in lines
    assert " 2 skipped as duplicates" in lines
    assert not any(any(c.isupper() for c in line) for line in lines)
