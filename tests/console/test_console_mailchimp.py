"""The console's export editor with a destination whose mapping targets depend on an export
setting: for Mailchimp, choosing the audience offers that audience's merge fields (asked
with ``Connection.mappingTargets(exportSettings:)``) and adds a row for each required one."""

from __future__ import annotations

import pytest
from playwright.async_api import expect
from segport_mailchimp.fake import CUSTOMERS_LIST_ID, DEMO_API_KEY, NEWSLETTER_LIST_ID
from segport_mailchimp.fake import run_fake as run_mailchimp_fake

from service.domain import Role
from tests.console.conftest import Console, screenshot
from tests.console.test_console import NewPage, signed_in


async def test_choosing_an_audience_offers_its_merge_fields_and_a_row_for_each_required(
    console: Console, new_page: NewPage, monkeypatch: pytest.MonkeyPatch
) -> None:
    with run_mailchimp_fake() as mailchimp:
        for name, value in mailchimp.environment().items():
            monkeypatch.setenv(name, value)
        created = await console.gql(
            "mutation($key: JSON!) { createConnection(input: {destinationType: "
            '"mailchimp", displayName: "Marketing Mailchimp", usableBy: ADMINS_AND_CONTRIBUTORS, '
            "acceptDataPrivacy: true, settings: {apiKey: $key}}) "
            "{ connection { id status } userErrors { message } } }",
            {"key": DEMO_API_KEY},
        )
        assert created["createConnection"]["userErrors"] == []
        connection_id = created["createConnection"]["connection"]["id"]

        page = await new_page()
        await signed_in(page, console, Role.CONTRIBUTOR, "carol")
        await page.get_by_role("link", name="Exports").click()
        await page.get_by_role("link", name="New export").click()
        editor = page.get_by_role("form", name="New export")
        await editor.get_by_label("Connection").select_option(connection_id)
        target = editor.get_by_label("Destination field 1")
        await expect(target).to_have_value("email_address")
        # No audience yet: only the e-mail address to map to.
        await expect(target.locator("option", has_text="City")).to_have_count(0)

        audience = editor.get_by_label("Audience (required)")
        await expect(audience.locator("option", has_text="Customers")).to_have_count(1)
        await audience.select_option(CUSTOMERS_LIST_ID)
        # The Customers audience requires CITY: offered, marked, and given a row.
        await expect(editor.get_by_label("Destination field 2")).to_have_value("CITY")
        await expect(target.locator("option", has_text="City (required)")).to_have_count(1)
        await expect(target.locator("option", has_text="Loyalty points")).to_have_count(1)
        await expect(editor.get_by_label("Destination field 1")).to_have_value("email_address")
        # Tags have no choices to pick from: typed, comma-separated.
        await editor.get_by_label("Tags").fill("spring, vip")
        await screenshot(page, "export-editor-mailchimp-audience")

        # Another audience: its own merge fields (the Newsletter audience has no CITY).
        await audience.select_option(NEWSLETTER_LIST_ID)
        await expect(target.locator("option", has_text="Loyalty points")).to_have_count(0)
        await expect(target.locator("option", has_text="First Name")).to_have_count(1)


async def test_an_admin_connects_mailchimp_by_oauth_once_an_app_is_registered(
    console: Console, new_page: NewPage, monkeypatch: pytest.MonkeyPatch
) -> None:
    with run_mailchimp_fake() as mailchimp:
        for name, value in mailchimp.environment().items():
            monkeypatch.setenv(name, value)
        # No registered app yet: OAuth is offered, disabled, with what to configure.
        monkeypatch.delenv("SEGPORT_MAILCHIMP_CLIENT_ID")
        page = await new_page()
        await signed_in(page, console, Role.ADMIN, "alice")
        await page.get_by_role("link", name="Connections").click()
        form = page.get_by_role("form", name="Add a connection")
        await form.get_by_label("Destination type").select_option("mailchimp")
        ways = form.get_by_role("group", name="How to connect")
        by_key = ways.get_by_label("With an API key")
        by_oauth = ways.get_by_label("By signing in on the destination (OAuth)")
        await expect(by_key).to_be_checked()
        await expect(by_oauth).to_be_disabled()
        await expect(ways).to_contain_text("SEGPORT_MAILCHIMP_CLIENT_ID")
        await expect(form.get_by_label("API key (required)")).to_be_visible()
        await screenshot(page, "connections-mailchimp-oauth-not-configured")

        # The app registered: OAuth asks for no key and goes through Mailchimp's page.
        monkeypatch.setenv("SEGPORT_MAILCHIMP_CLIENT_ID", mailchimp.state.config.client_id)
        await page.reload()
        form = page.get_by_role("form", name="Add a connection")
        await form.get_by_label("Destination type").select_option("mailchimp")
        ways = form.get_by_role("group", name="How to connect")
        by_oauth = ways.get_by_label("By signing in on the destination (OAuth)")
        await expect(by_oauth).to_be_enabled()
        await by_oauth.check()
        await expect(form.get_by_label("API key (required)")).to_have_count(0)
        await form.get_by_label("Display name").fill("Mailchimp by OAuth")
        await form.get_by_label("I accept this statement").check()
        await form.get_by_role("button", name="Save and connect").click()

        # The fake approves at once and sends the browser to /oauth/callback, then here.
        await page.wait_for_url(f"{console.url}#/connections")
        await expect(page.get_by_role("status").filter(has_text="is authorized")).to_be_visible()
        card = page.locator("article.connection", has_text="Mailchimp by OAuth")
        await expect(card.locator(".status")).to_have_text("connected")
        await expect(card.locator("dd.auth-kind")).to_have_text("OAuth")
        await expect(card).to_contain_text("Fake Mailchimp Co.")
        await expect(card.get_by_role("button", name="Re-authorize")).to_be_visible()
        await screenshot(page, "connections-mailchimp-oauth")

        # The other way, on the same destination: the key, checked when saved.
        await page.locator("summary", has_text="Add a connection").click()
        form = page.get_by_role("form", name="Add a connection")
        await form.get_by_label("Destination type").select_option("mailchimp")
        await (
            form.get_by_role("group", name="How to connect").get_by_label("With an API key").check()
        )
        await form.get_by_label("Display name").fill("Mailchimp by key")
        await form.get_by_label("API key (required)").fill(DEMO_API_KEY)
        await form.get_by_label("I accept this statement").check()
        await form.get_by_role("button", name="Save and connect").click()
        by_key = page.locator("article.connection", has_text="Mailchimp by key")
        await expect(by_key.locator("dd.auth-kind")).to_have_text("API key")
        await expect(by_key.locator(".status")).to_have_text("connected")
        await expect(by_key.get_by_role("button", name="Re-authorize")).to_have_count(0)

        listed = await console.gql(
            "{ connections { edges { node { authKind status destinationType { key } } } } }"
        )
        assert sorted(
            (e["node"]["authKind"], e["node"]["status"], e["node"]["destinationType"]["key"])
            for e in listed["connections"]["edges"]
        ) == [("API_KEY", "CONNECTED", "mailchimp"), ("OAUTH2", "CONNECTED", "mailchimp")]
