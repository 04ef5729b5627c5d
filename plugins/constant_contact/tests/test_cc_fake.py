"""The fake Constant Contact behaves as the fact sheet says: limits, error bodies,
activities, and the admin surface."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
from cc_support import GENERAL_LIST
from segport_constant_contact.fake import RunningFake

JSON = {"Content-Type": "application/json"}


def bearer(fake: RunningFake) -> dict[str, str]:
    return {"Authorization": f"Bearer {fake.state.issue_tokens()['access_token']}"}


def import_body(contacts: list[dict[str, Any]], list_ids: list[str] | None = None) -> bytes:
    return orjson.dumps({"import_data": contacts, "list_ids": list_ids or [GENERAL_LIST]})


async def test_api_without_a_valid_token_answers_401_with_a_single_object(
    fake: RunningFake, http: httpx.AsyncClient
) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-jwt"}):
        response = await http.get(f"{fake.api_base_url}/account/summary", headers=headers)
        assert response.status_code == 401
        assert response.json() == {"error_key": "unauthorized", "error_message": "Unauthorized"}


async def test_expired_tokens_are_refused(fake: RunningFake, http: httpx.AsyncClient) -> None:
    headers = bearer(fake)
    assert (await http.get(f"{fake.api_base_url}/account/summary", headers=headers)).is_success
    fake.state.expire_access_tokens()
    response = await http.get(f"{fake.api_base_url}/account/summary", headers=headers)
    assert response.status_code == 401


async def test_fifth_request_within_one_second_is_throttled(
    fake: RunningFake, http: httpx.AsyncClient
) -> None:
    headers = bearer(fake)
    url = f"{fake.api_base_url}/account/summary"
    answers = await asyncio.gather(*(http.get(url, headers=headers) for _ in range(6)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200, 200, 200, 200, 429, 429]
    throttled = next(a for a in answers if a.status_code == 429)
    assert throttled.json() == {"error_key": "throttled", "error_message": "Too Many Requests"}


async def test_daily_quota_answers_quota_exceeded(
    fake: RunningFake, http: httpx.AsyncClient
) -> None:
    fake.state.configure(requests_per_day=1)
    headers = bearer(fake)
    url = f"{fake.api_base_url}/account/summary"
    assert (await http.get(url, headers=headers)).status_code == 200
    response = await http.get(url, headers=headers)
    assert response.status_code == 429
    assert response.json() == {"error_key": "quota_exceeded", "error_message": "Limit Exceeded"}


async def test_import_needs_json_content_type(fake: RunningFake, http: httpx.AsyncClient) -> None:
    response = await http.post(
        f"{fake.api_base_url}/activities/contacts_json_import",
        content=import_body([{"email": "a@example.com"}]),
        headers={**bearer(fake), "Content-Type": "text/csv"},
    )
    assert response.status_code == 415
    assert isinstance(response.json(), list)


async def test_import_validates_list_ids_with_an_array_error_body(
    fake: RunningFake, http: httpx.AsyncClient
) -> None:
    url = f"{fake.api_base_url}/activities/contacts_json_import"
    headers = {**bearer(fake), **JSON}
    contacts = [{"email": "a@example.com"}]
    cases = {
        orjson.dumps({"import_data": contacts}): "list_ids is required",
        import_body(contacts, ["f" * 8]): "is not a list",
        import_body(contacts, [GENERAL_LIST] * 51): "at most 50",
    }
    for body, words in cases.items():
        response = await http.post(url, content=body, headers=headers)
        assert response.status_code == 400
        [error] = response.json()
        assert words in error["error_message"]


async def test_import_refuses_more_than_40000_contacts(
    fake: RunningFake, http: httpx.AsyncClient
) -> None:
    contacts = [{"email": f"p{i}@x.io"} for i in range(40_001)]
    response = await http.post(
        f"{fake.api_base_url}/activities/contacts_json_import",
        content=import_body(contacts),
        headers={**bearer(fake), **JSON},
    )
    assert response.status_code == 400
    assert "40001 contacts" in response.json()[0]["error_message"]
    assert fake.state.contacts == {}


async def test_body_over_4_mb_loses_its_tail_silently_and_the_fake_records_it(
    fake: RunningFake, http: httpx.AsyncClient
) -> None:
    contacts = [{"email": f"person{i:06d}@example.com", "first_name": "N" * 50}
                for i in range(39_000)]  # fmt: skip
    body = import_body(contacts)
    assert len(body) > 4_000_000
    response = await http.post(
        f"{fake.api_base_url}/activities/contacts_json_import",
        content=body,
        headers={**bearer(fake), **JSON},
    )
    assert response.status_code == 201  # no word of the loss, as the real service
    assert fake.state.truncated_imports == 1
    kept = len(fake.state.list_members(GENERAL_LIST))
    assert 0 < kept < 39_000
    assert fake.state.dropped_contacts == 39_000 - kept


async def test_activity_moves_to_completed_and_counts_every_contact(
    fake: RunningFake, http: httpx.AsyncClient
) -> None:
    fake.state.configure(unsubscribed={"GONE@example.com"})
    headers = {**bearer(fake), **JSON}
    contacts = [
        {"email": "ana@example.com", "first_name": "Ana"},
        {"email": "gone@example.com"},
        {"email": "not-an-email"},
        {"email": "bad.date@example.com", "anniversary": "someday"},
        {"first_name": "No Email"},
    ]
    created = await http.post(
        f"{fake.api_base_url}/activities/contacts_json_import",
        content=import_body(contacts),
        headers=headers,
    )
    assert created.status_code == 201
    activity_id = created.json()["activity_id"]
    assert created.json()["state"] == "initialized"
    url = f"{fake.api_base_url}/activities/{activity_id}"
    states = [(await http.get(url, headers=headers)).json() for _ in range(2)]
    assert [s["state"] for s in states] == ["processing", "completed"]
    status = states[-1]["status"]
    assert status["items_total_count"] == 5
    assert status["person_count"] == 2  # ana, and gone (updated, not added to the list)
    assert status["cannot_add_to_list_count"] == 1
    assert status["correctable_count"] == 2
    assert status["error_count"] == 1
    assert len(states[-1]["activity_errors"]) == 3
    assert fake.state.list_members(GENERAL_LIST) == {"ana@example.com"}


async def test_import_updates_existing_contacts_partially(
    fake: RunningFake, http: httpx.AsyncClient
) -> None:
    headers = {**bearer(fake), **JSON}
    url = f"{fake.api_base_url}/activities/contacts_json_import"
    first = [{"email": "Ana@Example.com", "first_name": "Ana", "last_name": "Ivanova"}]
    await http.post(url, content=import_body(first), headers=headers)
    await http.post(url, content=import_body([{"email": "ana@example.com", "last_name": "I."}]),
                    headers=headers)  # fmt: skip
    found = await http.get(f"{fake.api_base_url}/contacts", params={"email": "ANA@example.com"},
                           headers=headers)  # fmt: skip
    [contact] = found.json()["contacts"]
    assert (contact["first_name"], contact["last_name"]) == ("Ana", "I.")
    assert contact["list_memberships"] == [GENERAL_LIST]


async def test_unknown_activity_is_404(fake: RunningFake, http: httpx.AsyncClient) -> None:
    response = await http.get(
        f"{fake.api_base_url}/activities/00000000-0000-4000-8000-000000000000",
        headers=bearer(fake),
    )
    assert response.status_code == 404
    assert response.json()[0]["error_key"] == "contacts.api.not_found"


async def test_queued_activities_knob_answers_429_then_recovers(
    fake: RunningFake, http: httpx.AsyncClient
) -> None:
    fake.state.configure(queued_activities_429s=1)
    headers = {**bearer(fake), **JSON}
    url = f"{fake.api_base_url}/activities/contacts_json_import"
    body = import_body([{"email": "a@example.com"}])
    refused = await http.post(url, content=body, headers=headers)
    assert refused.status_code == 429
    assert "1,000 queued activities" in refused.json()["error_message"]
    assert (await http.post(url, content=body, headers=headers)).status_code == 201


async def test_contact_lists_paginate_with_next_links_and_counts(
    fake: RunningFake, http: httpx.AsyncClient
) -> None:
    for i in range(3):
        fake.state.add_list(f"Extra {i}")
    headers = bearer(fake)
    seen: list[str] = []
    url: str | None = f"{fake.api_base_url}/contact_lists?limit=2&include_membership_count=all"
    while url:
        page = (await http.get(url, headers=headers)).json()
        assert page["lists_count"] == 5
        assert all("membership_count" in item for item in page["lists"])
        seen += [item["name"] for item in page["lists"]]
        href = page["_links"].get("next", {}).get("href")
        url = f"{fake.url}{href}" if href else None
    assert seen == ["General Interest", "Newsletter", "Extra 0", "Extra 1", "Extra 2"]


async def test_membership_activities_add_and_remove_members(
    fake: RunningFake, http: httpx.AsyncClient
) -> None:
    headers = {**bearer(fake), **JSON}
    await http.post(f"{fake.api_base_url}/activities/contacts_json_import",
                    content=import_body([{"email": "a@example.com"}]), headers=headers)  # fmt: skip
    newsletter = "8a2b3c4d-0000-4000-8000-00000000a001"
    contact_id = fake.state.contacts["a@example.com"].contact_id
    change = orjson.dumps({"source": {"contact_ids": [contact_id]}, "list_ids": [newsletter]})
    added = await http.post(f"{fake.api_base_url}/activities/add_list_memberships",
                            content=change, headers=headers)  # fmt: skip
    assert added.status_code == 201
    assert fake.state.list_members(newsletter) == {"a@example.com"}
    await http.post(f"{fake.api_base_url}/activities/remove_list_memberships",
                    content=change, headers=headers)  # fmt: skip
    assert fake.state.list_members(newsletter) == set()


async def test_admin_endpoint_changes_knobs_and_refuses_unknown_ones(
    fake: RunningFake, http: httpx.AsyncClient
) -> None:
    answer = await http.post(f"{fake.url}/__fake__/config", json={"server_error_share": 1.0})
    assert answer.json()["server_error_share"] == 1.0
    assert answer.json()["client_secret"] == "***"  # noqa: S105
    response = await http.get(f"{fake.api_base_url}/account/summary", headers=bearer(fake))
    assert response.status_code == 503
    refused = await http.post(f"{fake.url}/__fake__/config", json={"flakiness": 1})
    assert refused.status_code == 400
    assert "'flakiness'" in refused.json()["error"]


async def test_request_log_measures_the_busiest_second(
    fake: RunningFake, http: httpx.AsyncClient
) -> None:
    headers = bearer(fake)
    url = f"{fake.api_base_url}/account/summary"
    await asyncio.gather(*(http.get(url, headers=headers) for _ in range(3)))
    assert fake.state.max_requests_in_window(1.0) == 3
    stats = (await http.get(f"{fake.url}/__fake__/stats")).json()
    assert stats["requests"] == 3
    assert stats["statuses"] == {"200": 3}
