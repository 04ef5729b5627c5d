"""The fake and the plugin against Constant Contact's published description (read at test
time from ../shared/reference; a missing file fails these tests): the operations the plugin
uses answer with the documented fields, and what the plugin sends is valid under the
documented schema and query limits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import orjson
import published
from cc_support import GENERAL_LIST
from segport_constant_contact import ConstantContact, account, activities
from segport_constant_contact.fake import RunningFake
from segport_constant_contact.session import BODY_PREFIX, body_suffix

from service.plugins.testing import pack_batches

IMPORT_CONTACT = "createImportJSONActivity_request_import_data_inner"


def bearer(fake: RunningFake) -> dict[str, str]:
    return {"Authorization": f"Bearer {fake.state.issue_tokens()['access_token']}"}


def documented(schema: str) -> set[str]:
    return set(published.schema_properties(schema))


def assert_documented(answer: Mapping[str, Any], schema: str, needed: set[str]) -> None:
    keys = set(answer)
    assert keys <= documented(schema), f"{schema}: undocumented {keys - documented(schema)}"
    assert needed <= keys, f"{schema}: missing {needed - keys}"


async def test_every_operation_the_plugin_uses_answers_with_the_documented_fields(
    fake: RunningFake, http: httpx.AsyncClient
) -> None:
    fake.state.configure(requests_per_second=10_000)
    headers = {**bearer(fake), "Content-Type": "application/json"}
    api = fake.api_base_url

    summary = (await http.get(f"{api}/account/summary", headers=headers)).json()
    schema = published.response_schema("/account/summary", "get", "200")
    assert_documented(summary, schema, {"encoded_account_id", "organization_name"})

    query = {"include_membership_count": "all", "status": "all"}
    lists = (await http.get(f"{api}/contact_lists", params=query, headers=headers)).json()
    schema = published.response_schema("/contact_lists", "get", "200")
    assert_documented(lists, schema, {"lists", "lists_count", "_links"})
    item = published.ref_of(schema, "lists")
    for entry in lists["lists"]:
        assert_documented(entry, item, {"list_id", "name", "membership_count"})

    custom = (await http.get(f"{api}/contact_custom_fields", headers=headers)).json()
    schema = published.response_schema("/contact_custom_fields", "get", "200")
    assert_documented(custom, schema, {"custom_fields"})
    item = published.ref_of(schema, "custom_fields")
    for entry in custom["custom_fields"]:
        assert_documented(entry, item, {"custom_field_id", "name", "label", "type"})

    body = orjson.dumps({"import_data": [{"email": "a@example.com"}], "list_ids": [GENERAL_LIST]})
    created = await http.post(f"{api}/activities/contacts_json_import", content=body,
                              headers=headers)  # fmt: skip
    assert created.status_code == 201
    # The 201's own schema (createCSVImportActivity_201_response) is described in prose
    # only ("Activity status for contacts_json_import"): the activity is the generic one.
    published.response_schema("/activities/contacts_json_import", "post", "201")
    status_keys = {"items_total_count", "person_count", "error_count", "correctable_count",
                   "cannot_add_to_list_count"}  # fmt: skip
    activity_keys = {"activity_id", "state", "status", "percent_done", "_links"}
    one = published.response_schema("/activities/{activity_id}", "get", "200")
    assert_documented(created.json(), one, activity_keys)

    activity_id = created.json()["activity_id"]
    polled = (await http.get(f"{api}/activities/{activity_id}", headers=headers)).json()
    assert_documented(polled, one, activity_keys | {"activity_errors"})
    status_schema = published.ref_of(one, "status")
    assert_documented(polled["status"], status_schema, status_keys | {"items_completed_count"})

    every = (await http.get(f"{api}/activities", params={"limit": 500}, headers=headers)).json()
    schema = published.response_schema("/activities", "get", "200")
    assert_documented(every, schema, {"activities"})
    item = published.ref_of(schema, "activities")
    [listed] = every["activities"]
    assert_documented(listed, item, activity_keys)
    assert_documented(listed["status"], published.ref_of(item, "status"), status_keys)


def test_the_plugins_query_limits_are_within_the_published_maxima() -> None:
    assert published.query_maximum("/activities", "get", "limit") >= activities.ACTIVITIES_PAGE
    assert (
        published.query_maximum("/contact_custom_fields", "get", "limit")
        >= account.CUSTOM_FIELDS_PAGE_SIZE
    )
    # The schema says 1000 and its own description "from 1 - 500": valid under both.
    lists_max = published.query_maximum("/contact_lists", "get", "limit")
    assert "from 1 - 500" in published.query_description("/contact_lists", "get", "limit")
    assert min(lists_max, 500) >= account.LISTS_PAGE_SIZE


def assert_valid_contact(contact: Mapping[str, Any], allowed_custom: set[str]) -> None:
    schema = published.schema_properties(IMPORT_CONTACT)
    for key, value in contact.items():
        if key.startswith("cf:"):
            assert key[3:] in allowed_custom, key
            prop = schema["cf:custom_field_name"]
        else:
            assert key in schema, f"{key!r} is not in the published import schema"
            prop = schema[key]
        if prop.type == "integer":
            assert isinstance(value, int), (key, value)
        else:
            assert isinstance(value, str), (key, value)
            if prop.max_length is not None:
                assert len(value) <= prop.max_length, (key, len(value))


def assert_valid_body(body: bytes, allowed_custom: set[str]) -> None:
    """An import body valid under the published request schema (and our reading of it)."""
    parsed = orjson.loads(body)
    request = published.schema_properties("createImportJSONActivity_request")
    assert set(parsed) <= set(request)
    assert set(published.schema_required("createImportJSONActivity_request")) <= set(parsed)
    assert 1 <= len(parsed["list_ids"]) <= 50
    for contact in parsed["import_data"]:
        assert_valid_contact(contact, allowed_custom)
        assert sum(k.startswith("cf:") for k in contact) <= 25
        phones = ("phone", "home_phone", "work_phone", "mobile_phone", "other_phone")
        assert sum(k in contact for k in phones) <= 3


def test_every_body_the_plugin_builds_from_awkward_profiles_is_valid_under_the_schema() -> None:
    destination = ConstantContact()
    awkward: list[dict[str, object]] = []
    for i in range(200):
        awkward.append(
            {
                "email": f"p{i}@example.com",
                "first_name": "F" * (i % 90),
                "phone": "5" * (i % 70) or None,
                "home_phone": "123", "work_phone": "456", "mobile_phone": "789",
                "sms_number": ["1231231234", "+1 (555) 010-0199", "1" * 20, "abc"][i % 4],
                "anniversary": ["6/1/2019", "2019-6-1", "someday", "2019-02-30"][i % 4],
                "birthday_month": i % 14, "birthday_day": (i * 7) % 33,
                "street": "S" * (200 + i), "city": "C" * (i % 60),
                "home_city": "H", "work_city": "W", "other_city": "O", "home_country": "FR",
                **{f"cf:f{n}": "v" * (250 + n) for n in range(i % 30)},
            }
        )  # fmt: skip
    for batch in pack_batches(destination, awkward, {"listId": GENERAL_LIST}):
        records = b",".join(record.encoded for record in batch.records)
        body = BODY_PREFIX + records + body_suffix(GENERAL_LIST)
        assert_valid_body(body, {f"f{n}" for n in range(30)})
