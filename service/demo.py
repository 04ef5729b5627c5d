"""``segport demo``: the embedded service, the destinations' demo servers and sample data.

:func:`run_demo` asks the installed plugins for their demo fixtures
(``register_demo_fixtures``) and starts every one: each runs what its destination
talks to in the demo (a fake of its servers) and gives the destination pointed at
it. The first by destination key has the demo export the banner's mutation runs;
the others get a connection and an export of their own beside it. The demo keeps
an embedded SQLite database in the data directory, loads sample segments of
generated profiles, connects each demo connection through the real OAuth flow
against the fixture's server (or with the fixture's API key), creates the demo
exports, then serves the API and prints the GraphiQL URL, an admin token, a
ready-to-paste mutation and the shell lines that run the export with
``segport run``. No destination is named here.

The port is bound before anything else starts, so a busy port ends the demo at
once with one line naming it (exit status 2), and the banner is printed only
once the server answers.

Starting it again on the same data directory reuses everything (fixed ids);
only the OAuth authorization is made again, because a fake server forgets its
tokens when it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path

import httpx
import uvicorn

from service.access.auth import mint_token
from service.api.ids import to_global_id
from service.app import create_app
from service.connections.context import destination_context
from service.connections.credentials import seal_credentials
from service.core import Services, open_services
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
from service.plugins import (
    DEMO_PROFILE_ATTRIBUTES,
    DemoDestination,
    DemoFixture,
    DestinationError,
)
from service.plugins.manager import load_destinations, service_info
from service.settings import Settings

DEMO_USER = "demo-admin"
EXPORT_ID = "demo-export-newsletter"
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


USAGE_ERROR = 2
"""Exit status when the demo cannot start as asked (a busy port), as the CLI's usage errors."""


class DemoError(Exception):
    """The demo cannot start; the message says what to do, ``exit_code`` is the exit status."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host``:``port`` for the demo's server (uvicorn's options);
    :class:`DemoError` naming the port when it cannot be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise DemoError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}): is another server "
            "(another segport demo?) using that port? Stop it, or choose another port with "
            "--port (make demo PORT=...)",
            exit_code=USAGE_ERROR,
        ) from None
    return sock


def connection_id(destination_key: str) -> str:
    """The demo connection's fixed id, one per destination."""
    return "demo-connection-" + destination_key.replace("_", "-")


def choose_fixture(fixtures: list[DemoFixture]) -> DemoFixture:
    """The fixture the demo runs: the first by destination key."""
    if not fixtures:
        raise DemoError(
            "segport demo needs a destination plugin that offers a demo fixture (the "
            "register_demo_fixtures hook, see docs/plugins.md), and none of the installed "
            "plugins does: install one, e.g. pip install -e <the plugin's folder>"
        )
    return fixtures[0]


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
            attributes=dict(
                zip(
                    DEMO_PROFILE_ATTRIBUTES,
                    (email, first, last, CITIES[n % len(CITIES)], (n * 37) % 5000),
                    strict=True,
                )
            ),
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


async def ensure_connection(services: Services, demo: DemoDestination) -> Connection:
    """The demo connection (shared with contributors, consent recorded, the demo admin
    as export user), authorized through the OAuth flow against the demo's server, or
    connected with the fixture's secret settings (an API key) and ``verify_connection``."""
    store = services.store
    key = demo.destination.key
    kinds = demo.destination.auth_kinds
    if "api_key" in kinds and demo.connection_secrets:
        return await _connect_with_secrets(services, demo)
    if "oauth2" not in kinds:
        raise DemoError(
            f"the demo connects through OAuth2 or with the fixture's connection secrets, and "
            f"destination {key!r} connects by {', '.join(kinds)} without secrets"
        )
    connection = await store.get_connection(connection_id(key))
    if connection is None:
        now = utcnow()
        connection = Connection(
            id=connection_id(key),
            display_name=demo.connection_name,
            destination_type=key,
            usable_by=ConnectionUsableBy.ADMINS_AND_CONTRIBUTORS,
            status=ConnectionStatus.PENDING_AUTHORIZATION,
            created_by=DEMO_USER,
            created_at=now,
            updated_at=now,
            settings=dict(demo.connection_settings),
            export_user=DEMO_USER,
            data_privacy_accepted_by=DEMO_USER,
            data_privacy_accepted_at=now,
            auth_kind="oauth2",
        )
        await store.save_connection(connection)
    flow = services.oauth
    url = await flow.start(connection, DEMO_USER)
    # The browser's part: the demo's server approves at once and redirects to our
    # callback, whose code and state we hand to the flow directly (we do not serve yet).
    async with httpx.AsyncClient(follow_redirects=False) as browser:
        answer = await browser.get(url)
    location = answer.headers.get("location")
    if answer.status_code != 302 or not location:
        raise DemoError(f"the {demo.server_name} refused the authorization: {answer.text}")
    params = httpx.URL(location).params
    return await flow.complete(params["state"], params["code"], DEMO_USER)


def _new_connection(demo: DemoDestination, status: ConnectionStatus) -> Connection:
    now = utcnow()
    key = demo.destination.key
    return Connection(
        id=connection_id(key),
        display_name=demo.connection_name,
        destination_type=key,
        usable_by=ConnectionUsableBy.ADMINS_AND_CONTRIBUTORS,
        status=status,
        created_by=DEMO_USER,
        created_at=now,
        updated_at=now,
        settings=dict(demo.connection_settings),
        export_user=DEMO_USER,
        data_privacy_accepted_by=DEMO_USER,
        data_privacy_accepted_at=now,
    )


async def _connect_with_secrets(services: Services, demo: DemoDestination) -> Connection:
    """An API-key demo connection: the fixture's secrets, checked as a new connection's are."""
    store = services.store
    connection = await store.get_connection(connection_id(demo.destination.key))
    if connection is None:
        connection = _new_connection(demo, ConnectionStatus.PENDING_AUTHORIZATION)
    connection.auth_kind = "api_key"
    connection.credentials = seal_credentials(
        services.cipher, secrets=dict(demo.connection_secrets)
    )
    await store.save_connection(connection)
    ctx = await destination_context(services.destination_access, connection)
    try:
        connection.account = await demo.destination.verify_connection(ctx)
    except DestinationError as exc:
        raise DemoError(f"the {demo.server_name} refused the demo connection: {exc}") from None
    connection.status = ConnectionStatus.CONNECTED
    connection.status_message = None
    connection.updated_at = utcnow()
    await store.save_connection(connection)
    return connection


def export_id_of(demo: DemoDestination, primary: bool) -> str:
    """The first fixture's export keeps the demo's historical id; others are named by key."""
    return EXPORT_ID if primary else f"demo-export-{demo.destination.key}"


async def ensure_export(
    services: Services, demo: DemoDestination, export_id: str = EXPORT_ID
) -> Export:
    existing = await services.store.get_export(export_id)
    if existing is not None:
        return existing
    now = utcnow()
    export = Export(
        id=export_id,
        display_name=demo.export.display_name,
        connection_id=connection_id(demo.destination.key),
        destination_type=demo.destination.key,
        settings=dict(demo.export.settings),
        field_mapping=[
            FieldMapping(source, target) for source, target in demo.export.field_mapping.items()
        ],
        segment_ids=[SEGMENTS[0][0]],
        schedule=ExportSchedule(mode=ScheduleMode.OFF),
        created_by=DEMO_USER,
        created_at=now,
        updated_at=now,
    )
    await services.store.save_export(export)
    return export


def banner(
    settings: Settings,
    base_url: str,
    demo: DemoDestination,
    account: str | None,
    segport_command: str = "segport",
    others: Sequence[tuple[DemoDestination, str | None]] = (),
) -> str:
    """What the demo prints once it serves: where things are, an admin token, and how to
    run the demo export from GraphiQL or from a shell (``segport_command``: how the user
    starts segport, e.g. ``.venv/bin/segport`` from ``make demo``)."""
    token = mint_token(settings, DEMO_USER, [Role.ADMIN], TOKEN_TTL)
    export_id = to_global_id("Export", EXPORT_ID)
    also = [f"  {d.server_name}: {d.server_url} (account {a!r})" for d, a in others]
    more_exports = [
        f"  {d.server_name}: runExport(input: {{exportId: "
        f'"{to_global_id("Export", export_id_of(d, primary=False))}"}})'
        for d, _ in others
    ]
    return "\n".join(
        [
            "",
            "segport demo is running.",
            f"  Console:             {base_url}/console/#token={token}",
            "                       (signs in as the demo admin; works offline)",
            f"  GraphQL explorer:    {base_url}/graphql",
            f"  {demo.server_name}: {demo.server_url} (account {account!r})",
            *also,
            f"  Data directory:      {settings.data_dir}",
            "",
            f"Admin token (valid {TOKEN_TTL.days} days; user {DEMO_USER!r}):",
            token,
            "",
            "In the GraphQL explorer, paste the token, or send the request header:",
            f'  {{"Authorization": "Bearer {token}"}}',
            "",
            "then run the demo export:",
            f'  mutation {{ runExport(input: {{exportId: "{export_id}"}}) '
            "{ exportRun { id status } userErrors { field message code } } }",
            "",
            "Or from a shell (the token is this demo's: its secrets are in the data directory):",
            f"  export SEGPORT_TOKEN={token}",
            f"  {segport_command} run {export_id} --url {base_url}/graphql --follow",
            "",
            *(["", "The other demo exports:", *more_exports] if more_exports else []),
            "",
            "Stop with Ctrl-C.",
            "",
        ]
    )


def segport_command() -> str:
    """How this process was started, to repeat in printed commands (``.venv/bin/segport``
    from ``make demo``); plain ``segport`` when that is not known."""
    started_as = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if started_as is not None and started_as.name == "segport":
        return str(started_as)
    return "segport"


def demo_settings(host: str, port: int, data_dir: Path) -> Settings:
    """Embedded settings for the demo: SQLite in ``data_dir``, no Redis, secrets made there."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return Settings(
        database_url=f"sqlite:///{data_dir.resolve() / 'segport.db'}",
        redis_url=None,
        public_url=f"http://{host}:{port}",
    ).with_secrets()


async def _serve(
    settings: Settings,
    listener: socket.socket,
    base_url: str,
    demo: DemoDestination,
    others: Sequence[DemoDestination] = (),
) -> None:
    async with open_services(settings) as services:
        # The installed destination reads its own server-side settings; the demo's copy
        # was configured by the fixture to talk to the demo server.
        for each in (demo, *others):
            services.destinations.substitute(each.destination)
        await load_sample_data(services)
        connection = await ensure_connection(services, demo)
        await ensure_export(services, demo)
        connected: list[tuple[DemoDestination, str | None]] = []
        for other in others:
            other_connection = await ensure_connection(services, other)
            await ensure_export(services, other, export_id_of(other, primary=False))
            connected.append((other, other_connection.account))
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(services),
                lifespan="off",
                log_level="warning",
                # Our logging is configured already (segport demo): uvicorn's own config
                # would give its lines another format.
                log_config=None,
            )
        )
        serving = asyncio.create_task(server.serve(sockets=[listener]))
        while not server.started:
            if serving.done():
                await serving
                raise DemoError(f"could not serve on {base_url}")
            await asyncio.sleep(0.05)
        print(
            banner(settings, base_url, demo, connection.account, segport_command(), connected),
            flush=True,
        )
        await serving


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_demo(host: str = "127.0.0.1", port: int = 8000, data_dir: Path | None = None) -> None:
    """Run the demo until interrupted (what ``segport demo`` does)."""
    data_dir = data_dir or Path("./demo-data")
    try:
        # Bound first: a busy port must stop the demo before it starts anything.
        with contextlib.closing(listen(host, port)) as listener:
            settings = demo_settings(host, port, data_dir)
            fixtures = load_destinations().demo_fixtures()
            first = choose_fixture(fixtures)
            # Started before the services and stopped after them, so runs still in flight
            # when the demo stops can checkpoint against a live server.
            with contextlib.ExitStack() as started:
                info = service_info(settings)
                demo = started.enter_context(first.start(info))
                others = [started.enter_context(f.start(info)) for f in fixtures if f is not first]
                # uvicorn re-raises the signal that stopped it; make SIGTERM end the demo
                # the way Ctrl-C does, so the services close cleanly either way.
                signal.signal(signal.SIGTERM, _interrupt)
                asyncio.run(_serve(settings, listener, f"http://{host}:{port}", demo, others))
    except KeyboardInterrupt:
        print("segport demo stopped.", flush=True)
    except DemoError as exc:
        print(f"segport demo: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(exc.exit_code) from None


__all__ = ["DemoError", "banner", "demo_profiles", "listen", "load_sample_data", "run_demo"]
