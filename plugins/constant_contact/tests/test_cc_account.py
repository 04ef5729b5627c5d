"""The account's lists and custom fields: paging on the API base only, deleted lists, and
custom fields as mapping targets checked against the account."""

from __future__ import annotations

import httpx
import pytest
from cc_support import GENERAL_LIST, fast_context
from segport_constant_contact import ConstantContact
from segport_constant_contact.errors import ForeignLink
from segport_constant_contact.fake import RunningFake, run_fake


async def test_deleted_lists_are_not_offered_and_refused_for_an_export(
    destination: ConstantContact, fake: RunningFake, http: httpx.AsyncClient
) -> None:
    gone = fake.state.add_list("Spring sale")
    fake.state.delete_list(gone)
    ctx = fast_context(fake, destination, http)
    choices = await destination.list_choices(ctx, "listId")
    assert gone not in {c.id for c in choices}
    assert GENERAL_LIST in {c.id for c in choices}
    [error] = await destination.check_export_settings(ctx, {"listId": gone})
    assert (error.field, error.code) == ("listId", "DELETED")
    assert "'Spring sale'" in error.message
    assert "deleted" in error.message
    lists_calls = [r for r in fake.state.request_log if r.path == "/v3/contact_lists"]
    assert lists_calls
    assert all(r.status == 200 for r in lists_calls)


async def test_a_next_link_to_another_host_is_refused_and_gets_no_token(
    destination: ConstantContact, fake: RunningFake, http: httpx.AsyncClient
) -> None:
    with run_fake() as elsewhere:
        fake.state.configure(foreign_next_link=elsewhere.url)
        for i in range(600):  # more than one page of 500
            fake.state.add_list(f"List {i}")
        ctx = fast_context(fake, destination, http)
        with pytest.raises(ForeignLink, match="outside the configured API base"):
            await destination.list_choices(ctx, "listId")
        assert elsewhere.state.request_log == []  # nothing (no token) went there
    assert fake.state.requests_to("GET", "/v3/contact_lists") == 1


async def test_next_links_on_the_api_base_are_followed_whatever_their_form(
    destination: ConstantContact, fake: RunningFake, http: httpx.AsyncClient
) -> None:
    fake.state.configure(foreign_next_link=fake.url)  # absolute, but ours
    for i in range(600):
        fake.state.add_list(f"List {i}")
    ctx = fast_context(fake, destination, http)
    assert len(await destination.list_choices(ctx, "listId")) == 602


async def test_the_accounts_custom_fields_are_offered_as_cf_targets(
    destination: ConstantContact, fake: RunningFake, http: httpx.AsyncClient
) -> None:
    for i in range(120):  # more than a page of 100
        fake.state.add_custom_field(f"Field {i}")
    ctx = fast_context(fake, destination, http)
    targets = await destination.account_mapping_targets(ctx)
    names = [t.name for t in targets]
    assert names[: len(destination.mapping_targets)] == [
        t.name for t in destination.mapping_targets
    ]
    assert {"cf:Shoe_size", "cf:Loyalty_tier", "cf:Field_0", "cf:Field_119"} <= set(names)
    shoe = next(t for t in targets if t.name == "cf:Shoe_size")
    assert (shoe.label, shoe.max_length, shoe.required) == ("Shoe size", 255, False)
    assert fake.state.requests_to("GET", "/v3/contact_custom_fields") == 2


async def test_a_mapping_is_checked_against_the_accounts_custom_fields(
    destination: ConstantContact, fake: RunningFake, http: httpx.AsyncClient
) -> None:
    ctx = fast_context(fake, destination, http)
    assert await destination.check_mapping(ctx, ["email", "cf:Shoe_size"]) == []
    [error] = await destination.check_mapping(ctx, ["email", "cf:Shoe_size", "cf:shoe_colour"])
    assert (error.field, error.code) == ("cf:shoe_colour", "UNKNOWN_CUSTOM_FIELD")
    assert "'shoe_colour'" in error.message
    before = len(fake.state.request_log)
    assert await destination.check_mapping(ctx, ["email", "first_name"]) == []
    assert len(fake.state.request_log) == before  # no custom field mapped: no request
