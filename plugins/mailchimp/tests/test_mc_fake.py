"""The fake Mailchimp follows the fact sheet (plugin README, "The fake Mailchimp"), over
real HTTP: keys and data centers, paging, batch subscribe with per-member errors and
compliance states, archiving, batch operations, the 10-connection cap, problem documents."""

from __future__ import annotations

import asyncio
import gzip
import io
import tarfile
from typing import Any

import httpx
import orjson
import pytest
from mc_support import fake, http  # noqa: F401 (fixtures, see pyproject)
from segport_mailchimp.fake import (
    CUSTOMERS_LIST_ID,
    DEMO_API_KEY,
    NEWSLETTER_LIST_ID,
    RunningFake,
    subscriber_hash,
)


def api(fake: RunningFake, path: str, dc: str = "us6") -> str:
    return fake.api_base_url.replace("{dc}", dc) + path


AUTH = ("anyone", DEMO_API_KEY)


async def test_ping_answers_chimpy_for_a_valid_key_in_its_data_center(
    fake: RunningFake, http: httpx.AsyncClient
) -> None:
    answer = await http.get(api(fake, "/ping"), auth=AUTH)
    assert answer.json() == {"health_status": "Everything's Chimpy!"}
    root = (await http.get(api(fake, "/"), auth=AUTH)).json()
    assert root["account_name"] == "Fake Mailchimp Co."


@pytest.mark.parametrize(
    ("auth", "dc"),
    [
        (("anyone", DEMO_API_KEY), "us19"),  # the right key in another data center
        (("anyone", "0" * 32 + "-us6"), "us6"),  # an unknown key
        (None, "us6"),
    ],
)
async def test_a_bad_key_gets_a_401_problem_document(
    fake: RunningFake, http: httpx.AsyncClient, auth: tuple[str, str] | None, dc: str
) -> None:
    answer = await http.get(api(fake, "/ping", dc), auth=auth)
    assert answer.status_code == 401
    body = answer.json()
    assert body["title"] == "API Key Invalid"
    assert body["status"] == 401
    assert {"type", "detail", "instance"} <= set(body)


async def test_lists_and_merge_fields_are_paged(fake: RunningFake, http: httpx.AsyncClient) -> None:
    for n in range(3):
        fake.state.add_audience(f"Extra {n}")
    first = (await http.get(api(fake, "/lists"), params={"count": 2}, auth=AUTH)).json()
    rest = (await http.get(api(fake, "/lists"), params={"count": 2, "offset": 2}, auth=AUTH)).json()
    assert first["total_items"] == 5
    assert len(first["lists"]) == 2
    assert len(rest["lists"]) == 2
    too_many = await http.get(api(fake, "/lists"), params={"count": 1001}, auth=AUTH)
    assert too_many.status_code == 400
    fields = (await http.get(api(fake, f"/lists/{CUSTOMERS_LIST_ID}/merge-fields"),
                             params={"count": 1000}, auth=AUTH)).json()  # fmt: skip
    by_tag = {f["tag"]: f for f in fields["merge_fields"]}
    assert by_tag["CITY"]["required"] is True
    assert by_tag["JOINED"]["options"]["date_format"] == "DD/MM/YYYY"
    assert by_tag["ADDRESS"]["type"] == "address"


async def subscribe(
    fake: RunningFake, http: httpx.AsyncClient, members: list[dict[str, Any]], **body: Any
) -> httpx.Response:
    return await http.post(
        api(fake, f"/lists/{NEWSLETTER_LIST_ID}"),
        json={"members": members, "update_existing": True, **body},
        auth=AUTH,
    )


async def test_batch_subscribe_answers_per_member_and_keeps_compliance_states(
    fake: RunningFake, http: httpx.AsyncClient
) -> None:
    fake.state.set_member(NEWSLETTER_LIST_ID, "gone@shop.example", "unsubscribed")
    fake.state.set_member(NEWSLETTER_LIST_ID, "known@shop.example", "subscribed", FNAME="Old")
    fake.state.forget(NEWSLETTER_LIST_ID, "erased@shop.example")
    answer = await subscribe(
        fake,
        http,
        [
            {"email_address": "new@shop.example", "status_if_new": "pending",
             "merge_fields": {"FNAME": "Ann", "BIRTHDAY": "02/29"}},
            {"email_address": "known@shop.example", "status_if_new": "subscribed",
             "merge_fields": {"FNAME": "New"}},
            {"email_address": "gone@shop.example", "status_if_new": "subscribed"},
            {"email_address": "erased@shop.example", "status_if_new": "subscribed"},
            {"email_address": "bot@throwaway.example", "status_if_new": "subscribed"},
            {"email_address": "bad@shop.example", "status_if_new": "subscribed",
             "merge_fields": {"BIRTHDAY": "1990-02-03"}},
        ],
    )  # fmt: skip
    body = answer.json()
    assert answer.status_code == 200
    assert (body["total_created"], body["total_updated"], body["error_count"]) == (1, 1, 4)
    errors = {e["email_address"]: e for e in body["errors"]}
    assert "compliance state" in errors["gone@shop.example"]["error"]
    assert "permanently deleted" in errors["erased@shop.example"]["error"]
    assert "looks fake or invalid" in errors["bot@throwaway.example"]["error"]
    assert errors["bad@shop.example"]["field"] == "BIRTHDAY"
    members = fake.state.audience(NEWSLETTER_LIST_ID).members
    assert members[subscriber_hash("new@shop.example")].status == "pending"
    assert members[subscriber_hash("known@shop.example")].merge_fields["FNAME"] == "New"
    assert members[subscriber_hash("gone@shop.example")].status == "unsubscribed"


async def test_more_than_500_members_or_a_bad_status_are_refused_whole(
    fake: RunningFake, http: httpx.AsyncClient
) -> None:
    many = [{"email_address": f"m{n}@shop.example", "status_if_new": "subscribed"}
            for n in range(501)]  # fmt: skip
    answer = await subscribe(fake, http, many)
    assert answer.status_code == 400
    assert answer.json()["title"] == "Invalid Resource"
    bad = await subscribe(fake, http, [{"email_address": "a@shop.example", "status_if_new": "yes"}])
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "members.0"
    assert fake.state.audience(NEWSLETTER_LIST_ID).active() == []


async def test_required_merge_fields_are_needed_for_new_members_only(
    fake: RunningFake, http: httpx.AsyncClient
) -> None:
    url = api(fake, f"/lists/{CUSTOMERS_LIST_ID}")
    members = [{"email_address": "c@shop.example", "status_if_new": "subscribed"}]
    body = (await http.post(url, json={"members": members}, auth=AUTH)).json()
    assert body["errors"][0]["field"] == "CITY"
    skipped = await http.post(
        url, json={"members": members}, params={"skip_merge_validation": "true"}, auth=AUTH
    )
    assert skipped.json()["total_created"] == 1


async def test_archiving_keeps_the_member_out_of_the_active_ones_and_404s_strangers(
    fake: RunningFake, http: httpx.AsyncClient
) -> None:
    fake.state.set_member(NEWSLETTER_LIST_ID, "Leaver@Shop.example", "subscribed")
    path = f"/lists/{NEWSLETTER_LIST_ID}/members/{subscriber_hash('leaver@shop.example')}"
    assert (await http.delete(api(fake, path), auth=AUTH)).status_code == 204
    assert fake.state.audience(NEWSLETTER_LIST_ID).active() == []
    member = (await http.get(api(fake, path), auth=AUTH)).json()
    assert member["status"] == "archived"
    stranger = f"/lists/{NEWSLETTER_LIST_ID}/members/{subscriber_hash('x@shop.example')}"
    assert (await http.delete(api(fake, stranger), auth=AUTH)).json()["status"] == 404


async def test_a_batch_operation_finishes_after_polls_with_gzipped_results(
    fake: RunningFake, http: httpx.AsyncClient
) -> None:
    fake.state.set_member(NEWSLETTER_LIST_ID, "a@shop.example", "subscribed")
    operations = [
        {"method": "DELETE", "operation_id": key,
         "path": f"/lists/{NEWSLETTER_LIST_ID}/members/{subscriber_hash(key)}"}
        for key in ("a@shop.example", "b@shop.example")
    ]  # fmt: skip
    started = (await http.post(api(fake, "/batches"), json={"operations": operations},
                               auth=AUTH)).json()  # fmt: skip
    assert started["status"] == "pending"
    assert started["total_operations"] == 2
    status = {}
    for _ in range(fake.state.config.batch_polls_to_finish):
        status = (await http.get(api(fake, f"/batches/{started['id']}"), auth=AUTH)).json()
    assert status["status"] == "finished"
    assert (status["finished_operations"], status["errored_operations"]) == (2, 1)
    archive = await http.get(status["response_body_url"])
    with tarfile.open(fileobj=io.BytesIO(archive.content), mode="r:gz") as tar:
        [entry] = [m for m in tar.getmembers() if m.isfile()]
        handle = tar.extractfile(entry)
        assert handle is not None
        results = orjson.loads(handle.read())
    assert {r["operation_id"]: r["status_code"] for r in results} == {
        "a@shop.example": 204,
        "b@shop.example": 404,
    }
    assert gzip.decompress(archive.content)  # a real gzip stream


async def test_an_eleventh_request_in_flight_for_a_key_gets_429(
    fake: RunningFake, http: httpx.AsyncClient
) -> None:
    fake.state.configure(latency_seconds=0.3)
    answers = await asyncio.gather(*(http.get(api(fake, "/ping"), auth=AUTH) for _ in range(12)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] * 10 + [429] * 2
    refused = next(a for a in answers if a.status_code == 429).json()
    assert refused["title"] == "Too Many Requests"
    assert fake.state.peak_in_flight[DEMO_API_KEY] == 10
    assert fake.state.over_cap_refusals == 2


async def test_fault_knobs_answer_5xx_and_unknown_knobs_are_refused(
    fake: RunningFake, http: httpx.AsyncClient
) -> None:
    fake.state.configure(server_errors_next=1)
    assert (await http.get(api(fake, "/ping"), auth=AUTH)).status_code == 500
    assert (await http.get(api(fake, "/ping"), auth=AUTH)).status_code == 200
    refused = await http.post(f"{fake.url}/__fake__/config", json={"latency": 1})
    assert refused.status_code == 400
    assert "unknown knob 'latency'" in refused.json()["error"]
