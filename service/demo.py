"""``segport demo``: the embedded service, a local fake Constant Contact and sample data.

:func:`run_demo` starts the fake Constant Contact (from the plugin package) on a
free port and points the plugin at it, keeps an embedded SQLite database in
the data directory, loads sample segments of generated profiles, connects a
"Demo Constant Contact" connection through the real OAuth flow against the
fake, creates a demo export to one of the fake's lists, then serves the API
and prints the GraphiQL URL, an admin token and a ready-to-paste mutation.

Starting it again on the same data directory reuses everything (fixed ids);
only the OAuth authorization is made again, because the fake forgets its
tokens when it stops.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import uvicorn

from service.access.auth import mint_token
from service.domain import (
    Connection,
    ConnectionStatus,
    ConnectionUsableBy,
    Export,
    ExportSchedule,
    FieldMapping,
    Profile,
    Role,
    ScheduleMode,
    Segment,
    utcnow,
)
from service.settings import Settings

if TYPE_CHECKING:
    from service.core import Services

DEMO_USER = "demo-admin"
CONNECTION_ID = "demo-connection-constant-contact"
EXPORT_ID = "demo-export-newsletter"
DEMO_LIST_ID = "07936f78-662a-11eb-af0a-fa163e56c9b0"
"""The fake's "General Interest" list (it always has this id)."""
PROFILE_COUNT = 2000
TOKEN_TTL = timedelta(days=7)

SEGMENTS = (
    ("demo-segment-newsletter", "Newsletter subscribers", "Every other customer"),
    ("demo-segment-buyers", "Recent buyers", "Bought in the last 90 days"),
    ("demo-segment-vip", "VIP customers", "Top spenders"),
)
FIRST_NAMES = ("Ana", "Ben", "Chloé", "Dmitri", "Eva", "Farid", "Grace", "Hiro", "Ines", "Jon")
LAST_NAMES = ("Ivanova", "Okafor", "Martin", "Schmidt", "Tanaka", "Rossi", "Nguyen", "Silva")
CITIES = ("Lisbon", "Lagos", "Lyon", "Leipzig", "Osaka", "Turin", "Hanoi", "Recife")


class DemoError(Exception):
    """The demo cannot start; the message says what to do."""


def _fake_module() -> Any:
    try:
        # Imported by name: the service never depends on a plugin package statically.
        return importlib.import_module("segport_constant_contact.fake")
    except ImportError as exc:
        raise DemoError(
            "segport demo needs the Constant Contact plugin and its fake server: "
            "pip install -e plugins/constant_contact "
            f"(importing it failed: {exc})"
        ) from None


def demo_profiles(count: int = PROFILE_COUNT) -> Iterator[Profile]:
    """Generated customers: half subscribe to the newsletter, every fifth bought recently,
    every twentieth is a VIP. A few have a malformed e-mail or share one, so a run
    shows records skipped as invalid and as duplicates."""
    for n in range(1, count + 1):
        first, last = FIRST_NAMES[n % len(FIRST_NAMES)], LAST_NAMES[n % len(LAST_NAMES)]
        email = f"{first.lower()}.{last.lower()}.{n}@example.com"
        if n % 97 == 0:
            email = f"{first.lower()}.{last.lower()}.{n}.example.com"  # no @: invalid
        elif n % 151 == 0:
            email = f"shared.inbox.{n % 3}@example.com"  # duplicates within a run
        segments = [
            seg_id
            for seg_id, every in zip((s[0] for s in SEGMENTS), (2, 5, 20), strict=True)
            if n % every == 0
        ]
        yield Profile(
            id=f"demo-profile-{n:05d}",
            attributes={
                "EmailAddress": email,
                "FirstName": first,
                "LastName": last,
                "City": CITIES[n % len(CITIES)],
                "LoyaltyPoints": (n * 37) % 5000,
            },
            segment_ids=segments,
        )


async def load_sample_data(services: Services) -> None:
    """Segments and profiles with fixed ids: loading twice changes nothing."""
    now = utcnow()
    for seg_id, name, description in SEGMENTS:
        existing = await services.store.get_segment(seg_id)
        await services.store.save_segment(
            Segment(
                id=seg_id,
                name=name,
                description=description,
                created_at=existing.created_at if existing else now,
                updated_at=existing.updated_at if existing else now,
            )
        )
    await services.store.upsert_profiles(list(demo_profiles()))


async def ensure_connection(services: Services) -> Connection:
    """The demo connection (shared with contributors, consent recorded, the demo admin
    as export user), authorized through the OAuth flow against the fake."""
    store = services.store
    connection = await store.get_connection(CONNECTION_ID)
    if connection is None:
        now = utcnow()
        connection = Connection(
            id=CONNECTION_ID,
            display_name="Demo Constant Contact",
            destination_type="constant_contact",
            usable_by=ConnectionUsableBy.ADMINS_AND_CONTRIBUTORS,
            status=ConnectionStatus.PENDING_AUTHORIZATION,
            created_by=DEMO_USER,
            created_at=now,
            updated_at=now,
            export_user=DEMO_USER,
            data_privacy_accepted_by=DEMO_USER,
            data_privacy_accepted_at=now,
        )
        await store.save_connection(connection)
    flow = services.oauth
    url = await flow.start(connection, DEMO_USER)
    # The browser's part: the fake approves at once and redirects to our callback,
    # whose code and state we hand to the flow directly (the server is not up yet).
    async with httpx.AsyncClient(follow_redirects=False) as browser:
        answer = await browser.get(url)
    location = answer.headers.get("location")
    if answer.status_code != 302 or not location:
        raise DemoError(f"the fake Constant Contact refused the authorization: {answer.text}")
    params = httpx.URL(location).params
    return await flow.complete(params["state"], params["code"], DEMO_USER)


async def ensure_export(services: Services) -> Export:
    existing = await services.store.get_export(EXPORT_ID)
    if existing is not None:
        return existing
    now = utcnow()
    export = Export(
        id=EXPORT_ID,
        display_name="Demo: newsletter subscribers to General Interest",
        connection_id=CONNECTION_ID,
        destination_type="constant_contact",
        settings={"listId": DEMO_LIST_ID},
        field_mapping=[
            FieldMapping("EmailAddress", "email"),
            FieldMapping("FirstName", "first_name"),
            FieldMapping("LastName", "last_name"),
        ],
        segment_ids=[SEGMENTS[0][0]],
        schedule=ExportSchedule(mode=ScheduleMode.OFF),
        created_by=DEMO_USER,
        created_at=now,
        updated_at=now,
    )
    await services.store.save_export(export)
    return export


def _global_id(type_name: str, raw_id: str) -> str:
    from service.api.ids import to_global_id

    return to_global_id(type_name, raw_id)


def banner(settings: Settings, base_url: str, fake_url: str, account: str | None) -> str:
    token = mint_token(settings, DEMO_USER, [Role.ADMIN], TOKEN_TTL)
    export_id = _global_id("Export", EXPORT_ID)
    return "\n".join(
        [
            "",
            "segport demo is running.",
            f"  GraphiQL:            {base_url}/graphql",
            f"  Fake Constant Contact: {fake_url} (account {account!r})",
            f"  Data directory:      {settings.data_dir}",
            "",
            f"Admin token (valid {TOKEN_TTL.days} days; user {DEMO_USER!r}):",
            token,
            "",
            "In GraphiQL, set the request header:",
            f'  {{"Authorization": "Bearer {token}"}}',
            "",
            "then run the demo export:",
            f'  mutation {{ runExport(input: {{exportId: "{export_id}"}}) '
            "{ exportRun { id status } userErrors { field message code } } }",
            "",
            "Stop with Ctrl-C.",
            "",
        ]
    )


def demo_settings(host: str, port: int, data_dir: Path) -> Settings:
    """Embedded settings for the demo: SQLite in ``data_dir``, no Redis, secrets made there."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return Settings(
        database_url=f"sqlite:///{data_dir.resolve() / 'segport.db'}",
        redis_url=None,
        public_url=f"http://{host}:{port}",
    ).with_secrets()


async def _serve(settings: Settings, host: str, port: int, fake_url: str) -> None:
    from service.app import create_app
    from service.core import open_services

    async with open_services(settings) as services:
        await load_sample_data(services)
        connection = await ensure_connection(services)
        await ensure_export(services)
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(services), host=host, port=port, lifespan="off", log_level="warning"
            )
        )
        serving = asyncio.create_task(server.serve())
        while not server.started:
            if serving.done():
                await serving
                raise DemoError(f"could not serve on {host}:{port}")
            await asyncio.sleep(0.05)
        print(banner(settings, f"http://{host}:{port}", fake_url, connection.account), flush=True)
        await serving


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_demo(host: str = "127.0.0.1", port: int = 8000, data_dir: Path | None = None) -> None:
    """Run the demo until interrupted (what ``segport demo`` does)."""
    data_dir = data_dir or Path("./demo-data")
    try:
        fake = _fake_module()
        settings = demo_settings(host, port, data_dir)
        running: AbstractContextManager[Any] = fake.run_fake(
            redirect_uris=[settings.oauth_redirect_uri]
        )
        with running as cc:
            # The plugin reads its settings from the environment when used.
            os.environ.update(cc.environment())
            # uvicorn re-raises the signal that stopped it; make SIGTERM end the demo
            # the way Ctrl-C does, so the services close cleanly either way.
            signal.signal(signal.SIGTERM, _interrupt)
            asyncio.run(_serve(settings, host, port, cc.url))
    except KeyboardInterrupt:
        print("segport demo stopped.", flush=True)
    except DemoError as exc:
        print(f"segport demo: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None


__all__ = ["DemoError", "demo_profiles", "load_sample_data", "run_demo"]
