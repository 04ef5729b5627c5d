"""When schedules next run: the refresh schedule's and each export's ``nextRunAt``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.api.conftest import ApiClient
from tests.api.operations import CREATE_EXPORT, export_input, make_connection, make_segment

TOKYO = ZoneInfo("Asia/Tokyo")  # no daylight-saving time: the expected instant is plain


def next_daily(hour: int, minute: int, zone: ZoneInfo, now: datetime) -> datetime:
    local = now.astimezone(zone)
    due = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if due <= local:
        due += timedelta(days=1)
    return due.astimezone(UTC)


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


SET_REFRESH = """
mutation($input: UpdateRefreshScheduleInput!) {
  updateRefreshSchedule(input: $input) { refreshSchedule { nextRunAt } userErrors { message } }
}"""

NEXT_RUNS = """
{ refreshSchedule { enabled nextRunAt }
  exports(first: 5) { edges { node { displayName nextRunAt } } } }"""


async def create_export(api: ApiClient, connection: str, segment: str, **schedule: Any) -> None:
    data = await api.data(
        CREATE_EXPORT,
        {
            "input": export_input(
                connection, [segment], displayName=schedule.pop("name"), **schedule
            )
        },
    )
    assert data["createExport"]["userErrors"] == []


async def next_runs(api: ApiClient) -> tuple[dict[str, Any], dict[str, str | None]]:
    data = await api.data(NEXT_RUNS, role="viewer")
    exports = {e["node"]["displayName"]: e["node"]["nextRunAt"] for e in data["exports"]["edges"]}
    return data["refreshSchedule"], exports


async def test_next_runs_follow_the_refresh_schedule_the_own_recurrence_or_nothing(
    api: ApiClient,
) -> None:
    connection, segment = await make_connection(api), await make_segment(api)
    await create_export(api, connection, segment, name="follows refresh")
    await create_export(
        api,
        connection,
        segment,
        name="own",
        schedule={
            "mode": "OWN",
            "recurrence": {"frequency": "DAILY", "times": ["07:30"], "timeZone": "Asia/Tokyo"},
        },
    )
    await create_export(api, connection, segment, name="off", schedule={"mode": "OFF"})

    refresh, exports = await next_runs(api)
    assert refresh == {"enabled": False, "nextRunAt": None}  # off by default
    assert exports["follows refresh"] is None
    assert exports["off"] is None
    assert exports["own"] is not None
    assert instant(exports["own"]) == next_daily(7, 30, TOKYO, datetime.now(UTC))

    changed = await api.data(
        SET_REFRESH,
        {
            "input": {
                "enabled": True,
                "frequency": "DAILY",
                "times": ["02:15"],
                "timeZone": "Asia/Tokyo",
            }
        },
    )
    expected = next_daily(2, 15, TOKYO, datetime.now(UTC))
    assert instant(changed["updateRefreshSchedule"]["refreshSchedule"]["nextRunAt"]) == expected

    refresh, exports = await next_runs(api)
    assert instant(refresh["nextRunAt"]) == expected
    assert exports["follows refresh"] is not None
    assert instant(exports["follows refresh"]) == expected
    assert exports["off"] is None
