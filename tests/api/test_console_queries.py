"""Queries the console needed and the API lacked: how many exports use a connection
(``Connection.exportCount``), and the run times a recurrence being edited would produce
(``upcomingRunTimes``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from tests.api.conftest import ApiClient
from tests.api.operations import make_connection, make_export, make_segment

EXPORT_COUNT = "{ connections { edges { node { displayName exportCount } } } }"

UPCOMING = """
query($recurrence: RecurrenceInput!, $count: Int) {
  upcomingRunTimes(recurrence: $recurrence, count: $count)
}"""

TOKYO = ZoneInfo("Asia/Tokyo")  # no daylight-saving time: the expected instants are plain


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_export_count_counts_the_exports_using_each_connection_for_admins_only(
    api: ApiClient,
) -> None:
    used = await make_connection(api)
    segment = await make_segment(api)
    await make_export(api, used, segment)
    await make_export(api, used, segment)

    admin = await api.data(EXPORT_COUNT)
    assert [e["node"]["exportCount"] for e in admin["connections"]["edges"]] == [2]
    # Contributors see a shared connection's name and type only, not its details.
    contributor = await api.data(EXPORT_COUNT, role="contributor")
    assert [e["node"]["exportCount"] for e in contributor["connections"]["edges"]] == [None]


async def test_upcoming_run_times_are_the_next_instants_of_a_weekly_recurrence(
    api: ApiClient,
) -> None:
    before = datetime.now(UTC)
    data = await api.data(
        UPCOMING,
        {
            "recurrence": {
                "frequency": "WEEKLY",
                "weekdays": ["MONDAY", "FRIDAY"],
                "times": ["18:30", "07:00"],
                "timeZone": "Asia/Tokyo",
            },
            "count": 6,
        },
        role="viewer",
    )
    times = [instant(t) for t in data["upcomingRunTimes"]]
    assert len(times) == 6
    assert times == sorted(times)
    assert before < times[0] <= before + timedelta(days=7)
    for t in times:
        local = t.astimezone(TOKYO)
        assert local.isoweekday() in (1, 5)
        assert (local.hour, local.minute) in ((7, 0), (18, 30))
    # Three weeks' worth of Mondays and Fridays at two times is 12: six fit in 3.5 weeks.
    assert times[-1] - times[0] < timedelta(days=25)


async def test_an_invalid_recurrence_names_its_fields_as_the_mutations_would(
    api: ApiClient,
) -> None:
    body = await api.post(
        UPCOMING,
        {
            "recurrence": {
                "frequency": "DAILY",
                "times": ["25:00"],
                "timeZone": "Mars/Olympus",
            }
        },
    )
    error = body["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    fields = {tuple(e["field"]) for e in error["extensions"]["userErrors"]}
    assert ("recurrence", "timeZone") in fields
    assert any(f[:2] == ("recurrence", "times") for f in fields)
    assert "Mars/Olympus" in error["message"]


async def test_upcoming_run_times_refuses_a_count_out_of_range(api: ApiClient) -> None:
    body = await api.post(
        UPCOMING,
        {
            "recurrence": {"frequency": "DAILY", "times": ["06:00"], "timeZone": "UTC"},
            "count": 0,
        },
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "count must be 1 to 20, not 0" in body["errors"][0]["message"]
