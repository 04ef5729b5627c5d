"""The console in a real browser, end to end: the people of product.md at work.

An admin connects Constant Contact through the fake's authorize page; a contributor
builds an export with the list picker and the mapping editor, runs it and watches it
succeed live; a viewer sees everything and can change nothing; a refused token brings
the sign-in back with its reason; the API's userErrors appear beside their fields.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from playwright.async_api import Page, expect

from service.domain import Role, utcnow
from tests.console.conftest import (
    NEWSLETTER,
    Console,
    connected_connection,
    sample_data,
    screenshot,
)

NewPage = Callable[..., Awaitable[Page]]


async def weekly_export(console: Console, connection_id: str, segment_id: str) -> str:
    """The export "Weekly" of the segment to the Newsletter list, e-mail only; its id."""
    created = await console.gql(
        'mutation($c: ID!, $s: ID!) { createExport(input: {displayName: "Weekly", '
        f'connectionId: $c, settings: {{listId: "{NEWSLETTER}"}}, fieldMapping: '
        '[{source: "EmailAddress", target: "email"}], segmentIds: [$s]}) '
        "{ export { id } userErrors { message } } }",
        {"c": connection_id, "s": segment_id},
    )
    assert created["createExport"]["userErrors"] == []
    export_id: str = created["createExport"]["export"]["id"]
    return export_id


RUN_COUNTS = """
query($id: ID!) { node(id: $id) { ... on ExportRun { status counts {
  profilesTotal profilesRead contactsSent acceptedByDestination rejectedByDestination
  skippedInvalid skippedDuplicate cannotAddToList skippedUnchanged removedFromList
  removalsFailed } } } }"""


# Every form control of the page with no accessible name from a label or aria-label.
UNLABELLED = """
[...document.querySelectorAll("input, select, textarea, button")]
  .filter((c) => c.type !== "hidden" && c.offsetParent !== null)
  .filter((c) => !(c.labels && c.labels.length) && !c.getAttribute("aria-label")
    && !(c.tagName === "BUTTON" && c.textContent.trim()))
  .map((c) => c.outerHTML)
"""


async def signed_in(page: Page, console: Console, role: Role, sub: str) -> None:
    await page.goto(console.sign_in_link(role, sub))
    await expect(page.locator("#who .who-sub")).to_have_text(sub)
    await expect(page.locator("#who .who-roles")).to_have_text(role.value)


async def test_the_sign_in_link_keeps_the_token_out_of_the_address_bar_and_the_page(
    console: Console, new_page: NewPage
) -> None:
    page = await new_page()
    token = console.token(Role.ADMIN, "alice")
    await page.goto(f"{console.url}#token={token}")
    await expect(page.get_by_role("heading", name="Exports")).to_be_visible()

    assert token not in page.url
    assert page.url == f"{console.url}#/exports"
    assert token not in await page.content()
    # The keyboard's first stop skips the navigation; the screen stays where it is.
    await page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    await expect(skip).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("main")).to_be_focused()
    assert page.url == f"{console.url}#/exports"
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("link", name="New export")).to_be_focused()

    # Back goes to where the browser was before (about:blank), not to a URL with the token.
    await page.go_back()
    assert token not in page.url
    await screenshot(page, "exports-empty")


async def test_an_admin_adds_a_connection_accepts_the_privacy_terms_and_returns_connected(
    console: Console, new_page: NewPage
) -> None:
    page = await new_page()
    await signed_in(page, console, Role.ADMIN, "alice")
    await page.get_by_role("link", name="Connections").click()
    form = page.get_by_role("form", name="Add a connection")
    await form.get_by_label("Display name").fill("Marketing account")
    await form.get_by_label("Who may use it").select_option("ADMINS_AND_CONTRIBUTORS")

    # Not accepted yet: the API's userError stands beside the statement, nothing is made.
    await form.get_by_role("button", name="Save and connect").click()
    refusal = form.locator('[data-path="acceptDataPrivacy"] .field-error')
    await expect(refusal).to_be_visible()
    await expect(refusal).to_contain_text("privacy")
    await screenshot(page, "connections-privacy-refused")
    assert (await console.gql("{ connections { totalCount } }"))["connections"]["totalCount"] == 0

    await form.get_by_label("I accept this statement").check()
    await form.get_by_role("button", name="Save and connect").click()

    # The fake approves at its authorize page and sends the browser to /oauth/callback,
    # which sends it back to the console (SEGPORT_UI_URL unset: the console).
    await page.wait_for_url(f"{console.url}#/connections")
    await expect(page.get_by_role("status").filter(has_text="is authorized")).to_be_visible()
    card = page.locator("article.connection", has_text="Marketing account")
    await expect(card.locator(".status")).to_have_text("connected")
    await expect(card).to_contain_text("Fake Outfitters")
    assert "status=" not in page.url, "the callback's query is taken out of the address"

    await card.get_by_role("button", name="Add yourself as export user").click()
    await expect(card.locator(".export-user")).to_have_text("alice")
    await expect(card.get_by_role("button", name="Add yourself as export user")).to_have_count(0)
    await expect(card).not_to_contain_text("null")
    await screenshot(page, "connections")

    listed = await console.gql(
        "{ connections { edges { node { status exportUser usableBy dataPrivacyAcceptedBy } } } }"
    )
    assert listed["connections"]["edges"] == [
        {
            "node": {
                "status": "CONNECTED",
                "exportUser": "alice",
                "usableBy": "ADMINS_AND_CONTRIBUTORS",
                "dataPrivacyAcceptedBy": "alice",
            }
        }
    ]


async def test_an_admin_renames_a_connection_and_removes_it_detaching_its_exports(
    console: Console, new_page: NewPage
) -> None:
    segment_id = await sample_data(console, profiles=2)
    connection_id = await connected_connection(console)
    await weekly_export(console, connection_id, segment_id)
    page = await new_page()
    await signed_in(page, console, Role.ADMIN, "alice")
    await page.get_by_role("link", name="Connections").click()
    card = page.locator("article.connection", has_text="Marketing account")
    await card.get_by_role("button", name="Edit").click()
    edit = card.get_by_role("form", name="Edit Marketing account")
    await edit.get_by_label("Display name").fill("Newsletter account")
    await edit.get_by_role("button", name="Save").click()
    card = page.locator("article.connection", has_text="Newsletter account")
    await expect(card).to_be_visible()

    await card.get_by_role("button", name="Remove…").click()
    remove = card.get_by_role("form", name="Remove Newsletter account")
    await expect(remove).to_contain_text("1 export(s) use it")
    await remove.get_by_label("Detach its 1 export(s)", exact=False).check()
    await remove.get_by_role("button", name="Remove connection").click()
    await expect(page.get_by_text("No connection yet.")).to_be_visible()
    exports = await console.gql("{ exports { edges { node { displayName attached } } } }")
    assert exports["exports"]["edges"] == [{"node": {"displayName": "Weekly", "attached": False}}]


async def test_a_contributor_builds_an_export_runs_it_and_watches_it_succeed_live(
    console: Console, new_page: NewPage
) -> None:
    await sample_data(console, profiles=12)
    await connected_connection(console)
    page = await new_page()
    await signed_in(page, console, Role.CONTRIBUTOR, "carol")
    # Contributors see the shared connection's name and type, and cannot add or change one.
    await page.get_by_role("link", name="Connections").click()
    shared = page.locator("article.connection", has_text="Marketing account")
    await expect(shared).to_contain_text("ready")
    await expect(shared.get_by_role("button")).to_have_count(0)
    await expect(page.get_by_role("form", name="Add a connection")).to_have_count(0)
    await expect(page.get_by_role("main")).not_to_contain_text("null")
    await page.get_by_role("link", name="Exports").click()
    await page.get_by_role("link", name="New export").click()
    editor = page.get_by_role("form", name="New export")
    await editor.get_by_label("Display name").fill("Spring newsletter")
    await expect(editor.get_by_label("Connection")).to_have_value(
        await page.locator("select[name=connectionId] option:checked").get_attribute("value") or ""
    )
    # The list picker offers the account's lists, read from the destination.
    picker = editor.get_by_label("List ID (required)")
    await expect(picker.locator("option", has_text="Newsletter")).to_have_count(1)
    await picker.select_option(NEWSLETTER)

    # The mapping editor starts with the required target, marked, and a guessed source.
    await expect(editor.get_by_label("Destination field 1")).to_have_value("email")
    await expect(editor.get_by_label("Destination field 1").locator("option:checked")).to_have_text(
        "E-mail address (required)"
    )
    await expect(editor.get_by_label("Profile attribute 1")).to_have_value("EmailAddress")
    # The targets are the connection's: the account's custom fields are offered too.
    custom = editor.get_by_label("Destination field 1").locator('option[value^="cf:"]')
    assert await custom.count() > 0
    await editor.get_by_role("button", name="Add attribute").click()
    await editor.get_by_label("Profile attribute 2").fill("FirstNam")
    await editor.get_by_label("Destination field 2").select_option("first_name")
    await editor.get_by_label("Spring buyers").check()
    await expect(editor.get_by_label("Sync mode")).to_have_value("SEND_CHANGES")

    # An attribute no profile has: the API refuses it, beside that very field.
    await editor.get_by_role("button", name="Save").click()
    refusal = editor.locator('[data-path="fieldMapping.1.source"] .field-error')
    await expect(refusal).to_be_visible()
    await expect(refusal).to_contain_text("FirstNam")
    await expect(editor.get_by_label("Profile attribute 2")).to_have_attribute(
        "aria-invalid", "true"
    )
    await expect(editor.get_by_label("Profile attribute 2")).to_be_focused()
    await screenshot(page, "export-editor-refused")
    await editor.get_by_label("Profile attribute 2").fill("FirstName")
    await editor.get_by_role("button", name="Save").click()

    # Saved, not run: the export's page shows no run yet.
    await expect(page.get_by_role("heading", name="Spring newsletter")).to_be_visible()
    await expect(page.get_by_text("No run yet.")).to_be_visible()
    saved = await console.gql(
        "{ exports { edges { node { id settings syncMode fieldMapping { source target } "
        "lastRun { id } } } } }"
    )
    export = saved["exports"]["edges"][0]["node"]
    assert export["settings"] == {"listId": NEWSLETTER}
    assert export["fieldMapping"] == [
        {"source": "EmailAddress", "target": "email"},
        {"source": "FirstName", "target": "first_name"},
    ]
    assert export["lastRun"] is None
    assert export["syncMode"] == "SEND_CHANGES"

    # Preview before the first run: everything is new, nothing is sent.
    await expect(
        page.get_by_text("Not run yet: preview what its first run would send.")
    ).to_be_visible()
    await page.get_by_role("button", name="Preview").click()
    await expect(page.locator('[data-preview="toAdd"]')).to_have_text("12")
    await expect(page.locator('[data-preview="unchanged"]')).to_have_text("0")
    sample = page.get_by_role("table", name="First records a run would send")
    await expect(sample.locator("tbody tr")).to_have_count(12)
    await expect(sample).to_contain_text("buyer0@example.com")
    await screenshot(page, "export-preview")
    runs = await console.gql("{ exportRuns { totalCount } }")
    assert runs["exportRuns"]["totalCount"] == 0, "a preview is not a run"

    await page.get_by_role("button", name="Run now").click()
    status = page.locator(".run-status")
    await expect(status).to_have_attribute("data-status", "SUCCEEDED", timeout=60_000)
    await expect(page.locator(".live-state")).to_have_text("The run has ended.")
    await expect(page.locator("#run-progress")).to_have_attribute("aria-valuetext", "100 %")
    run_id = page.url.rsplit("/", 1)[1]
    answer = await console.gql(RUN_COUNTS, {"id": run_id.replace("%3D", "=")})
    counts = answer["node"]["counts"]
    assert counts["contactsSent"] == 12
    for name, value in counts.items():
        await expect(page.locator(f'[data-count="{name}"]')).to_have_text(str(value))
    await screenshot(page, "run")

    await page.get_by_role("link", name="Spring newsletter").click()
    history = page.get_by_role("table", name="Runs of Spring newsletter")
    await expect(history.locator("tbody tr")).to_have_count(1)
    await expect(history).to_contain_text("on demand")
    await expect(history).to_contain_text("succeeded")

    # After the run the destination holds them all: a preview now sends nothing.
    await page.get_by_role("button", name="Preview").click()
    await expect(page.locator('[data-preview="unchanged"]')).to_have_text("12")
    await expect(page.locator('[data-preview="toAdd"]')).to_have_text("0")


async def test_a_viewer_sees_everything_and_can_change_nothing(
    console: Console, new_page: NewPage
) -> None:
    segment_id = await sample_data(console, profiles=3)
    connection_id = await connected_connection(console)
    await weekly_export(console, connection_id, segment_id)
    page = await new_page()
    await signed_in(page, console, Role.VIEWER, "victor")

    nav = page.get_by_role("navigation", name="Console")
    await expect(nav.get_by_role("link")).to_have_text(["Exports", "Schedule", "Segments"])
    row = page.get_by_role("row").filter(has_text="Weekly")
    # Viewers may not see connections (api.md): the export says it has one, not which.
    await expect(row).to_contain_text("attached (hidden from your role)")
    await expect(row).to_contain_text("Spring buyers")
    await expect(row).to_contain_text("read only")
    await expect(page.get_by_role("button")).to_have_text(["Sign out", "Search"])
    await expect(page.get_by_role("link", name="New export")).to_have_count(0)
    await screenshot(page, "viewer-exports")
    search = page.get_by_role("search")
    await search.get_by_label("Search exports").fill("nothing like it")
    await search.get_by_label("Search exports").press("Enter")
    await expect(page.get_by_text("No export matches.")).to_be_visible()
    await search.get_by_label("Search exports").fill("week")
    await search.get_by_role("button", name="Search").click()
    await expect(page.get_by_role("row").filter(has_text="Weekly")).to_be_visible()

    await nav.get_by_role("link", name="Schedule").click()
    await expect(
        page.get_by_text("Only administrators change the refresh schedule.")
    ).to_be_visible()
    await expect(page.get_by_label("The refresh schedule is on")).to_be_disabled()
    await expect(page.get_by_label("Frequency")).to_be_disabled()
    await expect(page.get_by_role("button", name="Save schedule")).to_have_count(0)

    await nav.get_by_role("link", name="Segments").click()
    segments = page.get_by_role("table", name="Segments")
    await expect(segments.get_by_role("row").filter(has_text="Spring buyers")).to_contain_text("3")

    await page.goto(f"{console.url}#/connections")
    await expect(page.get_by_role("heading", name="Not for your role")).to_be_visible()
    await expect(page.get_by_role("main")).to_contain_text("may not see connections")


async def test_a_refused_token_brings_back_the_sign_in_with_the_reason(
    console: Console, new_page: NewPage
) -> None:
    page = await new_page()
    await signed_in(page, console, Role.ADMIN, "alice")
    # The session's token expires while the console is open: the next request says so.
    expired = console.token(Role.ADMIN, "alice", ttl=timedelta(seconds=-60))
    await page.evaluate("token => sessionStorage.setItem('segport.console.token', token)", expired)
    await page.get_by_role("link", name="Segments").click()
    heading = page.get_by_role("heading", name="Sign in to segport")
    await expect(heading).to_be_visible()
    await expect(page.get_by_role("status")).to_contain_text("expired")
    assert await page.evaluate("sessionStorage.getItem('segport.console.token')") is None
    await screenshot(page, "sign-in-expired")

    # With the keyboard alone: the token field has the focus, Enter signs in.
    await expect(page.get_by_label("Access token")).to_be_focused()
    await page.keyboard.type(console.token(Role.CONTRIBUTOR, "carol"))
    await page.keyboard.press("Enter")
    await expect(page.locator("#who .who-sub")).to_have_text("carol")


async def test_an_admin_edits_the_refresh_schedule_and_sees_its_next_run_times(
    console: Console, new_page: NewPage
) -> None:
    page = await new_page()
    await signed_in(page, console, Role.ADMIN, "alice")
    await page.get_by_role("link", name="Schedule").click()
    form = page.get_by_role("form", name="Refresh schedule")
    await form.get_by_label("The refresh schedule is on").check()
    await form.get_by_label("Frequency").select_option("WEEKLY")
    await form.get_by_label("Mon", exact=True).check()
    await form.get_by_label("Thu", exact=True).check()
    await form.get_by_label("Time zone").fill("Europe/Paris")
    await form.get_by_label("Time zone").press("Tab")
    await form.get_by_label("Time 1", exact=True).fill("06:00")
    await form.get_by_role("button", name="Add a time").click()
    await form.get_by_label("Time 2", exact=True).fill("18:30")
    await form.get_by_label("Time 2", exact=True).press("Tab")
    upcoming = form.locator(".upcoming li")
    await expect(upcoming).to_have_count(5)
    await form.get_by_role("button", name="Save schedule").click()
    await expect(form.get_by_role("status")).to_contain_text("Saved. Next refresh")
    await screenshot(page, "schedule")

    saved = await console.gql(
        "{ refreshSchedule { enabled frequency weekdays times timeZone nextRunAt } }"
    )
    schedule = saved["refreshSchedule"]
    assert schedule["enabled"] is True
    assert schedule["weekdays"] == ["MONDAY", "THURSDAY"]
    assert schedule["times"] == ["06:00", "18:30"]
    assert schedule["timeZone"] == "Europe/Paris"
    first = await upcoming.first.locator("time").get_attribute("datetime")
    assert first is not None
    assert first[:16] == schedule["nextRunAt"][:16]

    # A zone that does not exist: the userError stands beside the time zone field.
    await form.get_by_label("Time zone").fill("Mars/Olympus")
    await form.get_by_role("button", name="Save schedule").click()
    refusal = form.locator('[data-path="timeZone"] .field-error')
    await expect(refusal).to_be_visible()
    await expect(refusal).to_contain_text("Mars/Olympus")


async def test_every_screen_reads_at_360_px_without_sideways_scrolling(
    console: Console, new_page: NewPage
) -> None:
    segment_id = await sample_data(console, profiles=3)
    connection_id = await connected_connection(console)
    created = await console.gql(
        'mutation($c: ID!, $s: ID!) { createExport(input: {displayName: "Weekly digest '
        f'for the spring campaign", connectionId: $c, settings: {{listId: "{NEWSLETTER}"}}, '
        'fieldMapping: [{source: "EmailAddress", target: "email"}], segmentIds: [$s]}) '
        "{ export { id } userErrors { message } } }",
        {"c": connection_id, "s": segment_id},
    )
    export_id = created["createExport"]["export"]["id"]
    page = await new_page(width=360, height=780)
    await signed_in(page, console, Role.ADMIN, "alice")
    screens = {
        "exports": "#/exports",
        "connections": "#/connections",
        "export-editor": f"#/exports/{export_id}/edit",
        "export": f"#/exports/{export_id}/runs",
        "schedule": "#/schedule",
        "segments": "#/segments",
    }
    for name, hash_ in screens.items():
        await page.goto(f"{console.url}{hash_}")
        await expect(page.locator("main h1")).to_be_visible()
        await expect(page.locator("main .loading")).to_have_count(0)
        # Wide tables scroll inside their own box; the page itself never does.
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, f"{name} is {width} px wide at 360 px"
        assert await page.evaluate(UNLABELLED) == [], f"{name} has controls without a label"
        await screenshot(page, f"narrow-{name}")


async def test_a_run_s_rejected_records_are_listed_with_reasons_and_download_as_csv(
    console: Console, new_page: NewPage
) -> None:
    segment_id = await sample_data(console, profiles=4)
    await console.gql(
        "mutation($p: [ProfileInput!]!) { upsertProfiles(input: {profiles: $p}) "
        "{ upsertedCount } }",
        {
            "p": [
                {
                    "id": "bad1",
                    "attributes": {"EmailAddress": "not-an-address"},
                    "segmentIds": [segment_id],
                },
                {
                    "id": "bad2",
                    "attributes": {"EmailAddress": "two@@example.com"},
                    "segmentIds": [segment_id],
                },
            ]
        },
    )
    connection_id = await connected_connection(console)
    export_id = await weekly_export(console, connection_id, segment_id)
    queued = await console.gql(
        "mutation($id: ID!) { runExport(input: {exportId: $id}) { exportRun { id } } }",
        {"id": export_id},
    )
    run_id = queued["runExport"]["exportRun"]["id"]

    page = await new_page()
    await signed_in(page, console, Role.VIEWER, "victor")
    await page.goto(f"{console.url}#/runs/{run_id}")
    await expect(page.locator(".run-status")).to_have_attribute(
        "data-status", "SUCCEEDED", timeout=60_000
    )
    await expect(page.locator('[data-count="skippedInvalid"]')).to_have_text("2")
    rows = page.get_by_role("table", name="Rejected records and field warnings").locator("tbody tr")
    await expect(rows).to_have_count(2)
    await expect(rows.filter(has_text="bad1")).to_be_visible()
    await expect(page.get_by_role("button", name="Cancel run")).to_be_hidden()
    await screenshot(page, "run-rejections")

    async with page.expect_download() as download_info:
        await page.get_by_role("button", name="Download CSV").click()
    download = await download_info.value
    text = Path(await download.path()).read_text()
    lines = text.strip().splitlines()
    assert lines[0] == '"profileId","field","code","message"'
    assert len(lines) == 3
    assert any(line.startswith('"bad1",') for line in lines)
    assert any(line.startswith('"bad2",') for line in lines)


async def test_a_contributor_watches_a_run_move_live_and_cancels_it(
    console: Console, new_page: NewPage
) -> None:
    segment_id = await sample_data(console, profiles=5)
    connection_id = await connected_connection(console)
    export_id = await weekly_export(console, connection_id, segment_id)
    # The destination's import never finishes: the run stays RUNNING until cancelled.
    console.fake.state.configure(imports_stall=True)
    page = await new_page()
    await signed_in(page, console, Role.CONTRIBUTOR, "carol")
    await page.goto(f"{console.url}#/exports/{export_id}/runs")
    await page.get_by_role("button", name="Run now").click()
    status = page.locator(".run-status")
    await expect(status).to_have_attribute("data-status", "RUNNING", timeout=30_000)
    await expect(page.locator('[data-count="contactsSent"]')).to_have_text("5", timeout=30_000)
    await expect(page.locator(".live-state")).to_contain_text("Live")
    await expect(page.locator(".phase")).to_have_text(
        "Waiting for the destination to process what was sent"
    )
    card = page.locator(".card.live")
    before = await card.bounding_box()
    await screenshot(page, "run-live")

    await page.get_by_role("button", name="Cancel run").click()
    await expect(status).to_have_attribute("data-status", "CANCELLED", timeout=30_000)
    await expect(page.locator(".live-state")).to_have_text("The run has ended.")
    await expect(page.get_by_role("button", name="Cancel run")).to_be_hidden()
    after = await card.bounding_box()
    # Live data and the end of the run change numbers and words, not the card's size.
    assert before is not None
    assert after is not None
    assert after["height"] == before["height"]


async def test_a_refusal_at_the_destination_s_consent_page_comes_back_with_its_reason(
    console: Console, new_page: NewPage
) -> None:
    console.fake.state.configure(consent_page=True)
    page = await new_page()
    await signed_in(page, console, Role.ADMIN, "alice")
    await page.get_by_role("link", name="Connections").click()
    form = page.get_by_role("form", name="Add a connection")
    await form.get_by_label("Display name").fill("Marketing account")
    await form.get_by_label("I accept this statement").check()
    await form.get_by_role("button", name="Save and connect").click()

    # The fake's consent page, as the destination shows it: refuse.
    await page.get_by_role("button", name="Deny").click()
    await page.wait_for_url(f"{console.url}#/connections")
    refusal = page.get_by_role("status").filter(has_text="was not connected")
    await expect(refusal).to_contain_text("access_denied")
    await expect(refusal).to_contain_text("AUTHORIZATION_DENIED")
    card = page.locator("article.connection", has_text="Marketing account")
    await expect(card.locator(".status")).to_have_text("pending authorization")
    await screenshot(page, "connections-refused")

    # Trying again from the card, and allowing this time, connects it.
    await card.get_by_role("button", name="Connect").click()
    await page.get_by_role("button", name="Allow").click()
    await page.wait_for_url(f"{console.url}#/connections")
    await expect(card.locator(".status")).to_have_text("connected")

    # Run all: the exports whose schedule is on (none yet) are queued.
    await page.get_by_role("link", name="Exports").click()
    await page.get_by_role("button", name="Run all").click()
    await expect(page.get_by_role("status").filter(has_text="run(s) queued")).to_have_text(
        "0 run(s) queued."
    )


async def test_an_admin_duplicates_detaches_attaches_and_removes_an_export_from_the_list(
    console: Console, new_page: NewPage
) -> None:
    segment_id = await sample_data(console, profiles=2)
    connection_id = await connected_connection(console)
    await weekly_export(console, connection_id, segment_id)
    page = await new_page()
    await signed_in(page, console, Role.ADMIN, "alice")
    await page.get_by_role("button", name="Duplicate Weekly").click()
    copy = page.get_by_role("row").filter(has_text="Weekly (copy)")
    await expect(copy).to_contain_text("Marketing account")

    await page.get_by_role("button", name="Detach Weekly (copy)").click()
    await expect(copy).to_contain_text("detached")
    await page.get_by_role("button", name="Attach Weekly (copy)").click()
    attach = page.get_by_role("form", name="Attach Weekly (copy)")
    await attach.get_by_label("Connection").select_option(label="Marketing account")
    await attach.get_by_role("button", name="Attach").click()
    await expect(copy).to_contain_text("Marketing account")

    await page.get_by_role("button", name="Remove Weekly (copy)").click()
    confirm = page.get_by_role("alertdialog", name="Confirm removal")
    await expect(confirm.get_by_role("button", name="Cancel")).to_be_focused()
    await confirm.get_by_role("button", name="Remove Weekly (copy)").click()
    await expect(copy).to_have_count(0)
    names = await console.gql("{ exports { edges { node { displayName attached } } } }")
    assert names["exports"]["edges"] == [{"node": {"displayName": "Weekly", "attached": True}}]


async def test_the_console_signs_out_when_the_token_runs_out_even_while_idle(
    console: Console, new_page: NewPage
) -> None:
    page = await new_page()
    await page.goto(console.sign_in_link(Role.VIEWER, "victor", ttl=timedelta(seconds=5)))
    await expect(page.locator("#who .who-sub")).to_have_text("victor")
    # No click, no request: the token's own expiry brings the sign-in back.
    await expect(page.get_by_role("heading", name="Sign in to segport")).to_be_visible(
        timeout=30_000
    )
    await expect(page.get_by_role("status")).to_contain_text("your token expired")


async def test_an_admin_sees_a_destination_pause_and_lifts_it(
    console: Console, new_page: NewPage
) -> None:
    await connected_connection(console)
    destination = console.services.destinations.get("constant_contact")
    assert destination is not None
    limiter = console.services.destination_access.limiters.for_destination(destination)
    await limiter.pause_until(utcnow() + timedelta(hours=3), "The daily request quota is spent.")
    page = await new_page()
    await signed_in(page, console, Role.ADMIN, "alice")
    await page.get_by_role("link", name="Connections").click()
    pause = page.get_by_role("status").filter(has_text="wait until")
    await expect(pause).to_contain_text("The daily request quota is spent.")
    await screenshot(page, "connections-paused")
    await pause.get_by_role("button", name="Lift the pause of Constant Contact").click()
    await expect(page.get_by_role("status").filter(has_text="wait until")).to_have_count(0)
    assert await limiter.pause() is None
