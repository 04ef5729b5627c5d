"""``segport demo``'s console link, opened in the browser: it signs in as the demo admin
and shows the demo's export and connection, with nothing fetched from the internet
(every request the page makes goes to the demo's own address)."""

from __future__ import annotations

import asyncio
import re
import signal
from pathlib import Path

from playwright.async_api import Request, expect

from tests.connections.test_demo_banner import BANNER_END, LINE_WAIT_SECONDS, start_demo
from tests.console.conftest import screenshot
from tests.console.test_console import NewPage
from tests.support.net import free_port


async def test_the_demo_prints_a_console_link_that_signs_in_and_shows_the_demo(
    tmp_path: Path, new_page: NewPage
) -> None:
    port = free_port()
    process = await start_demo(port, tmp_path / "demo-data", tmp_path)
    assert process.stdout is not None
    printed: list[str] = []
    try:
        while not printed or printed[-1].strip() != BANNER_END:
            line = await asyncio.wait_for(process.stdout.readline(), LINE_WAIT_SECONDS)
            assert line, "the demo ended before its banner:\n" + "".join(printed)
            printed.append(line.decode())
        found = re.search(r"Console:\s+(\S+)", "".join(printed))
        assert found, printed
        link = found.group(1)
        assert link.startswith(f"http://127.0.0.1:{port}/console/#token=")

        page = await new_page()
        requested: list[str] = []

        def note(request: Request) -> None:
            requested.append(request.url)

        page.on("request", note)
        await page.goto(link)
        await expect(page.locator("#who .who-sub")).to_have_text("demo-admin")
        # One demo export per destination the demo brings (Constant Contact and Mailchimp).
        await expect(page.get_by_role("table", name="Exports").locator("tbody tr")).to_have_count(2)
        await page.get_by_role("link", name="Connections").click()
        await expect(page.locator("article.connection .status")).to_have_text(
            ["connected", "connected"]
        )
        await screenshot(page, "demo-connections")
        assert requested
        origin = f"http://127.0.0.1:{port}/"
        elsewhere = [url for url in requested if not url.startswith(origin)]
        assert not elsewhere, elsewhere
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.communicate(), 30)
