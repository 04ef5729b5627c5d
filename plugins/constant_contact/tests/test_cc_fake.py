"""The fake Constant Contact behaves as docs/constant-contact.md says (the published
description): limits, refusals and their bodies, activities, lists, custom fields, and
the admin surface."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest
from cc_support import GENERAL_LIST
from segport_constant_contact.fake import RunningFake, run_fake

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
    assert throttled.json() == {"error_message": "You exceeded the request rate limit"}


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
    fake.state.configure(refusals_expected=True)  # invalid requests on purpose
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
    fake.state.configure(refusals_expected=True)  # invalid requests on purpose
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
        {"email": "bad.date@example.com", "anniversary": "2019-02-30"},
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
    assert status["items_completed_count"] == 5
    assert states[0]["percent_done"] == 50
    assert status["person_count"] == 5  # every contact of the request, as published
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


async def post_import(
    fake: RunningFake, http: httpx.AsyncClient, contacts: list[Any]
) -> httpx.Response:
    return await http.post(
        f"{fake.api_base_url}/activities/contacts_json_import",
        content=import_body(contacts),
        headers={**bearer(fake), **JSON},
    )


async def test_contacts_the_published_schema_does_not_allow_are_refused_with_400(
    fake: RunningFake, http: httpx.AsyncClient
) -> None:
    fake.state.configure(refusals_expected=True)  # invalid requests on purpose
    fake.state.configure(requests_per_second=10_000)
    ok = {"email": "a@example.com"}
    cases: list[tuple[dict[str, Any], str]] = [
        ({**ok, "first_name": "F" * 51}, "first_name is longer than 50"),
        ({**ok, "phone": "5" * 51}, "phone is longer than 50"),
        ({**ok, "street": "S" * 256}, "street is longer than 255"),
        ({**ok, "sms_number": "1" * 17}, "sms_number is longer than 16"),
        ({**ok, "sms_number": "+1 123 123 1234"}, "US number"),
        ({**ok, "cf:favourite_colour": "red"}, "custom field 'favourite_colour' does not exist"),
        ({**ok, "favourite_colour": "red"}, "unknown property 'favourite_colour'"),
        ({**ok, "home_country": "FR"}, "unknown property 'home_country'"),
        ({**ok, **dict.fromkeys(("phone", "home_phone", "work_phone", "mobile_phone"), "1")},
         "more than 3 phone numbers"),
        ({**ok, "city": "A", "home_city": "B", "work_city": "C", "other_city": "D"},
         "more than 3 addresses"),
        ({**ok, "birthday_month": "7", "birthday_day": 1}, "birthday_month must be an integer"),
    ]  # fmt: skip
    for contact, words in cases:
        response = await post_import(fake, http, [ok, contact])
        assert response.status_code == 400, contact
        [error] = response.json()
        assert error["error_key"] == "contacts.api.validation.error"
        assert error["error_message"].startswith("import_data row 2: ")
        assert words in error["error_message"], (words, error)
    assert fake.state.contacts == {}


async def test_impossible_dates_are_correctable_errors_of_their_contact(
    fake: RunningFake, http: httpx.AsyncClient
) -> None:
    contacts = [
        {"email": "a@example.com", "birthday_month": 2, "birthday_day": 31},
        {"email": "b@example.com", "anniversary": "6-31-2019"},
        {"email": "c@example.com", "anniversary": "6-1-2019", "birthday_month": 2,
         "birthday_day": 29, "cf:Shoe_size": "42"},
    ]  # fmt: skip
    created = await post_import(fake, http, contacts)
    assert created.status_code == 201, created.text
    activity = fake.state.activities[created.json()["activity_id"]]
    assert (activity.person_count, activity.correctable_count) == (3, 2)
    assert fake.state.list_members(GENERAL_LIST) == {"c@example.com"}


async def test_activities_collection_lists_newest_first_with_limit_and_state(
    fake: RunningFake, http: httpx.AsyncClient
) -> None:
    fake.state.configure(refusals_expected=True)  # invalid requests on purpose
    fake.state.configure(requests_per_second=10_000, ending_states=["completed", "failed"])
    first = (await post_import(fake, http, [{"email": "a@example.com"}])).json()["activity_id"]
    second = (await post_import(fake, http, [{"email": "b@example.com"}])).json()["activity_id"]
    url = f"{fake.api_base_url}/activities"
    headers = bearer(fake)
    listed = (await http.get(url, params={"limit": 500}, headers=headers)).json()
    assert [a["activity_id"] for a in listed["activities"]] == [second, first]
    assert {a["state"] for a in listed["activities"]} == {"processing"}
    await http.get(url, params={"limit": 500}, headers=headers)
    failed = (await http.get(url, params={"state": "failed"}, headers=headers)).json()
    assert [a["activity_id"] for a in failed["activities"]] == [second]
    assert failed["activities"][0]["activity_errors"]
    for params in ({"limit": 501}, {"limit": 0}, {"state": "initialized"}):
        refused = await http.get(url, params=params, headers=headers)
        assert refused.status_code == 400, params
        assert isinstance(refused.json(), list)


async def test_contact_lists_refuse_limits_over_500_and_filter_by_status(
    fake: RunningFake, http: httpx.AsyncClient
) -> None:
    fake.state.configure(refusals_expected=True)  # invalid requests on purpose
    fake.state.configure(requests_per_second=10_000)
    gone = fake.state.add_list("Old")
    fake.state.delete_list(gone)
    url = f"{fake.api_base_url}/contact_lists"
    headers = bearer(fake)
    refused = await http.get(url, params={"limit": 501}, headers=headers)
    assert refused.status_code == 400
    active = (await http.get(url, headers=headers)).json()
    assert gone not in {item["list_id"] for item in active["lists"]}
    deleted = (await http.get(url, params={"status": "deleted"}, headers=headers)).json()
    [item] = deleted["lists"]
    assert (item["list_id"], bool(item["deleted_at"])) == (gone, True)
    both = (await http.get(url, params={"status": "all"}, headers=headers)).json()
    assert both["lists_count"] == 3
    into_deleted = await post_import(fake, http, [{"email": "a@example.com"}])
    assert into_deleted.status_code == 201  # the general list is alive
    body = orjson.dumps({"import_data": [{"email": "a@example.com"}], "list_ids": [gone]})
    response = await http.post(f"{fake.api_base_url}/activities/contacts_json_import",
                               content=body, headers={**headers, **JSON})  # fmt: skip
    assert response.status_code == 400
    assert "is deleted" in response.json()[0]["error_message"]


async def test_custom_fields_page_and_new_ones_can_be_added(
    fake: RunningFake, http: httpx.AsyncClient
) -> None:
    fake.state.configure(refusals_expected=True)  # invalid requests on purpose
    fake.state.configure(requests_per_second=10_000)
    answer = await http.post(f"{fake.url}/__fake__/custom_fields", json={"label": "Pet name"})
    assert answer.json()["name"] == "Pet_name"
    url = f"{fake.api_base_url}/contact_custom_fields"
    headers = bearer(fake)
    assert (await http.get(url, params={"limit": 101}, headers=headers)).status_code == 400
    page = (await http.get(url, params={"limit": 2}, headers=headers)).json()
    assert [f["name"] for f in page["custom_fields"]] == ["Shoe_size", "Loyalty_tier"]
    rest = (await http.get(f"{fake.url}{page['_links']['next']['href']}", headers=headers)).json()
    assert [f["name"] for f in rest["custom_fields"]] == ["Pet_name"]


def send_an_invalid_import() -> None:
    with run_fake() as fake:
        body = {"import_data": [{"email": "a@example.com", "fax": "1"}], "list_ids": [GENERAL_LIST]}
        answer = httpx.post(
            f"{fake.api_base_url}/activities/contacts_json_import",
            content=orjson.dumps(body),
            headers={**bearer(fake), **JSON},
        )
        assert answer.status_code == 400


def test_a_request_the_published_description_does_not_allow_fails_the_test_that_sent_it() -> None:
    # So every body and query sent to the fake anywhere in the test suite is checked.
    with pytest.raises(AssertionError, match=r"refused 1 request\(s\).*POST /v3/activities"):
        send_an_invalid_import()
