"""The ``segport`` command line: serve, worker, token, import, run, export-schema, demo.

Every command loads the settings first and turns a configuration problem into
one line naming the variable (exit status 2), never a traceback. Heavy parts
(the API app, the worker, the demo) are imported only by the command that
needs them, so ``segport token`` stays quick.
"""

from __future__ import annotations

import asyncio
import errno
import re
import socket
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn
from urllib.parse import urlsplit

import structlog
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from typer.models import CommandFunctionType

from service.access.auth import TokenLifetimeError, mint_token
from service.domain import Role
from service.observability.logging import configure_logging
from service.settings import Settings, SettingsError

if TYPE_CHECKING:
    from service.store.importer import ImportFormat, ImportSummary

USAGE_ERROR = 2
"""Exit status for bad arguments or configuration (as click uses for usage errors)."""

DEV_TOKEN_TTL = timedelta(hours=12)
"""Lifetime of the admin token ``segport serve`` prints in embedded mode (at most the cap)."""

REDIS_CHECK_SECONDS = 5.0
"""How long ``segport worker`` waits for Redis to answer before giving up at start."""


class _FlagHelp:
    """Help without a value placeholder for flags: ``--follow``, not ``--follow <bool>``."""

    def get_params(self, ctx: Any) -> list[Any]:
        params: list[Any] = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            if getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = ""
        return params


class _Command(_FlagHelp, typer.core.TyperCommand):
    pass


class _Group(_FlagHelp, typer.core.TyperGroup):
    pass


class _Typer(typer.Typer):
    """A Typer whose commands and groups print flags without a value placeholder."""

    def __init__(self, **options: Any) -> None:
        super().__init__(cls=_Group, **options)

    def command(
        self, *args: Any, **options: Any
    ) -> Callable[[CommandFunctionType], CommandFunctionType]:
        options.setdefault("cls", _Command)
        return super().command(*args, **options)


app = _Typer(
    name="segport",
    help="Export customer segments to marketing destinations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
import_app = _Typer(help="Load data into segport.", no_args_is_help=True)
app.add_typer(import_app, name="import")

_err = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int = USAGE_ERROR) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    _err.print(f"[bold red]error:[/] {message}", markup=True)
    raise typer.Exit(code)


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming each bad ``SEGPORT_*`` variable and what is wrong with it."""
    parts = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "settings"
        variable = f"SEGPORT_{field.upper()}"
        message = str(error["msg"]).removeprefix("Value error, ")
        # Our own validators already name the variable; do not say it twice.
        parts.append(message if message.startswith(variable) else f"{variable}: {message}")
    return "invalid configuration: " + "; ".join(parts)


def settings_or_exit(*, resolve_secrets: bool = True) -> Settings:
    """The settings, logging configured; a configuration problem ends the command cleanly.

    ``resolve_secrets=False`` leaves missing secrets missing instead of generating them
    into the database's directory (for commands that keep their own data directory).
    """
    # stdout carries only a command's output (a token, the SDL) so scripts can capture it;
    # whatever is logged before logging is configured (e.g. "generated_secret") goes to stderr.
    structlog.reset_defaults()
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    try:
        settings = Settings()
        # Logging first: what resolving the secrets logs ("generated_secret") must come out
        # in the format of every later line, not structlog's default one.
        configure_logging(settings)
        if resolve_secrets:
            settings = settings.with_secrets()
    except SettingsError as exc:
        fail(f"invalid configuration: {exc}")
    except ValidationError as exc:
        fail(describe_validation_error(exc))
    return settings


_TTL = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_TTL_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_ttl(text: str) -> timedelta:
    """``30m``, ``1h``, ``7d`` (or ``45s``) to a timedelta; ValueError naming the value."""
    match = _TTL.match(text)
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"--ttl {text!r} is not a positive duration like 45s, 30m, 1h or 7d")
    try:
        return timedelta(**{_TTL_UNITS[match.group(2)]: int(match.group(1))})
    except OverflowError:
        raise ValueError(f"--ttl {text!r} is too long to be a duration") from None


def format_duration(duration: timedelta) -> str:
    """A duration in the largest unit ``--ttl`` takes that divides it: ``30d``, ``12h``."""
    seconds = int(duration.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def parse_roles(names: list[str]) -> list[Role]:
    allowed = ", ".join(role.value for role in Role)
    if not names:
        raise ValueError(f"give at least one --role ({allowed})")
    roles: list[Role] = []
    for name in names:
        if "," in name:
            parts = [part.strip() for part in name.split(",") if part.strip()]
            repeated = " ".join(f"--role {part}" for part in parts)
            raise ValueError(
                f"--role {name!r} names several roles: repeat --role for each ({repeated})"
            )
        try:
            role = Role(name.strip().lower())
        except ValueError:
            raise ValueError(f"--role {name!r} is not one of {allowed}") from None
        if role not in roles:
            roles.append(role)
    return roles


# -- commands ------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
) -> None:
    """Serve the GraphQL API. Without SEGPORT_REDIS_URL it also runs jobs and the schedule."""
    settings = settings_or_exit().listening_on(host, port)
    # Bind before printing anything: on a busy port the banner and the token would
    # describe (and serve) the other process.
    listener = bind_or_exit(host, port)
    import uvicorn

    from service.api.socket_protocol import server_config
    from service.app import create_app_from_settings

    asgi_app = create_app_from_settings(settings)
    url = f"http://{host}:{port}/graphql"
    queue = "arq on Redis" if settings.redis_url else "in-process jobs and schedule"
    store = f"SQLite {settings.sqlite_path}" if settings.embedded else "MongoDB"
    mode = "embedded" if settings.embedded else "distributed"
    typer.echo(f"segport serving in {mode} mode ({store}, {queue})")
    if settings.graphiql:
        typer.echo(f"GraphQL explorer: {url}")
    if settings.embedded and settings.jwt_jwks_url is None:
        lifetime = min(DEV_TOKEN_TTL, timedelta(seconds=settings.token_max_ttl_seconds))
        token = mint_token(settings, "admin", [Role.ADMIN], ttl=lifetime)
        # The token rides in the fragment, which browsers never send to a server (so it
        # reaches no access log); the console keeps it in the tab and clears the address.
        typer.echo(f"Console (signs in as the development admin): {console_link(url, token)}")
        typer.echo(f"Development admin token (valid {format_duration(lifetime)}): {token}")
        typer.echo(f"Use it as the header  Authorization: Bearer {token}")
    else:
        typer.echo(f"Console: {url.removesuffix('/graphql')}/console/")
    server = uvicorn.Server(server_config(asgi_app, host=host, port=port, log_config=None))
    server.run(sockets=[listener])
    if not server.started:  # the app failed to start; uvicorn has logged why
        raise typer.Exit(3)


def console_link(graphql_url: str, token: str) -> str:
    """The console's address that signs in with ``token`` (through the URL fragment)."""
    return f"{graphql_url.removesuffix('/graphql')}/console/#token={token}"


def bind_or_exit(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` for the server; one line naming the port when not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    # As uvicorn does: a restarted server may bind while old connections are in TIME_WAIT.
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        if exc.errno == errno.EADDRINUSE:
            fail(f"port {port} on {host} is already in use by another process (choose --port)")
        reason = exc.strerror or str(exc)
        fail(f"cannot listen on {host} port {port}: {reason}")
    listener.set_inheritable(True)
    return listener


@app.command()
def worker() -> None:
    """Run an arq worker: takes export runs and schedule ticks from Redis."""
    settings = settings_or_exit()
    if not settings.redis_url:
        fail(
            "segport worker needs SEGPORT_REDIS_URL (the arq queue on Redis); "
            "without Redis, `segport serve` runs jobs in-process"
        )
    redis_or_exit(settings.redis_url)
    from service.worker import run_worker

    run_worker(settings)


def redis_or_exit(url: str) -> None:
    """Check that Redis answers at ``url``; one line naming it and the variable when not."""
    from redis.exceptions import RedisError

    from service.coordination.redis import close_redis, connect_redis

    async def ping() -> None:
        client = connect_redis(url)
        try:
            await asyncio.wait_for(client.ping(), REDIS_CHECK_SECONDS)
        finally:
            await close_redis(client)

    try:
        asyncio.run(ping())
    except (RedisError, OSError, TimeoutError) as exc:
        reason = str(exc) or f"no answer within {REDIS_CHECK_SECONDS:g}s"
        fail(f"cannot reach Redis at {redis_address(url)} (SEGPORT_REDIS_URL): {reason}")


def redis_address(url: str) -> str:
    """Where a Redis URL points, without its password: ``host:port`` or the socket path."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"


@app.command()
def token(
    sub: Annotated[str, typer.Option("--sub", help="The user the token names.")],
    role: Annotated[
        list[str],
        typer.Option("--role", help="admin, contributor or viewer; repeat for several."),
    ],
    ttl: Annotated[
        str,
        typer.Option(help="Lifetime: 45s, 30m, 1h, 7d (at most SEGPORT_TOKEN_MAX_TTL_SECONDS)."),
    ] = "1h",
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Embedded mode: the data directory whose secrets to sign with "
            "(default: the directory of SEGPORT_DATABASE_URL's file; the demo's is demo-data).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Mint a JWT signed with the server's secret (for development and scripts).

    It signs with SEGPORT_JWT_SECRET or, in embedded mode, with the secret `segport serve`
    generated into the data directory; it never makes a secret of its own.
    """
    try:
        roles = parse_roles(role)
        lifetime = parse_ttl(ttl)
    except ValueError as exc:
        fail(str(exc))
    if not sub.strip():
        fail("--sub must not be empty")
    configured = settings_or_exit(resolve_secrets=False)
    if data_dir is not None and not configured.embedded:
        fail(
            "--data-dir is for embedded mode; with SEGPORT_DATABASE_URL on MongoDB "
            "tokens are signed with SEGPORT_JWT_SECRET"
        )
    try:
        settings = configured.with_secrets(generate=False, data_dir=data_dir)
    except SettingsError as exc:
        fail(f"invalid configuration: {exc}")
    if settings.jwt_secret is None:
        if settings.jwt_jwks_url is not None:
            fail(
                "segport token signs with SEGPORT_JWT_SECRET, which is not set "
                "(tokens of a JWKS issuer are minted by that issuer)"
            )
        folder = settings.secrets_dir(data_dir)
        fail(
            f"no JWT secret to sign with: SEGPORT_JWT_SECRET is not set and {folder}/jwt_secret "
            "does not exist; start `segport serve` with this SEGPORT_DATABASE_URL first (it "
            "makes the secret), or point --data-dir at the server's data directory "
            "(--data-dir demo-data for `segport demo`)"
        )
    try:
        typer.echo(mint_token(settings, sub.strip(), roles, ttl=lifetime))
    except TokenLifetimeError as exc:
        fail(f"--ttl {ttl!r}: {exc}")


@import_app.command("profiles")
def import_profiles(
    file: Annotated[
        Path, typer.Argument(help="A .jsonl (JSON Lines) or .csv file.", show_default=False)
    ],
    segment: Annotated[
        list[str] | None,
        typer.Option("--segment", help="Add every row to this segment (made if missing)."),
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Profiles per database write.", min=1)] = 1000,
) -> None:
    """Import profiles from JSON Lines or CSV, with a progress bar and a summary.

    Exit status: 0 when profiles were imported and no row was rejected, 1 when a
    row was rejected (the other rows are imported), 2 when the file cannot be used.
    """
    from service.store.importer import ImportFileError, detect_format

    try:
        file_format = detect_format(file)
    except ImportFileError as exc:
        fail(str(exc))
    if not file.is_file():
        fail(f"{str(file)!r} does not exist or is not a file")
    settings = settings_or_exit()
    try:
        summary = asyncio.run(
            _import(settings, file, file.stat().st_size, file_format, segment or [], batch_size)
        )
    except ImportFileError as exc:
        fail(str(exc))
    out = Console(highlight=False, soft_wrap=True)
    out.print(
        f"rows read: {summary.rows_read}, upserted: {summary.upserted}, "
        f"rejected: {summary.rejected}"
    )
    if summary.segments_created:
        out.print("segments created: " + ", ".join(summary.segments_created), markup=False)
    if summary.spanning_rows:
        # Said so that a quote left open which happens to fit is seen, not silent.
        spans = ", ".join(f"{first}-{last}" for first, last in summary.spanning_lines)
        more = ", ..." if summary.spanning_rows > len(summary.spanning_lines) else ""
        out.print(
            f"rows with a line break in a quoted cell: {summary.spanning_rows} "
            f"(lines {spans}{more})"
        )
    if summary.rejected:
        for rejection in summary.rejections:
            out.print(f"  line {rejection.line}: {rejection.reason}", markup=False)
        hidden = summary.rejected - len(summary.rejections)
        if hidden:
            out.print(f"  ... and {hidden} more rejected rows")
        raise typer.Exit(1)
    if summary.upserted == 0:
        fail(f"no profiles found in {str(file)!r}", code=1)


async def _import(
    settings: Settings,
    file: Path,
    size: int,
    file_format: ImportFormat,
    segments: list[str],
    batch_size: int,
) -> ImportSummary:
    from service.store import open_store
    from service.store.importer import ProfileImporter

    store = await open_store(settings)
    try:
        with Progress(
            TextColumn("importing {task.fields[name]}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=_err,
            transient=True,
        ) as progress:
            task = progress.add_task("import", total=size, name=file.name)
            importer = ProfileImporter(
                store,
                batch_size=batch_size,
                segments=segments,
                on_progress=lambda done: progress.update(task, completed=done),
            )
            return await importer.import_file(file, file_format)
    finally:
        await store.close()


@app.command()
def run(
    export_id: Annotated[str, typer.Argument(help="The export's global id.")],
    follow: Annotated[
        bool, typer.Option("--follow", help="Draw the run's progress until it ends.")
    ] = False,
    preview: Annotated[
        bool,
        typer.Option(
            "--preview", help="Print what a run would do now (counts, first records); send nothing."
        ),
    ] = False,
    url: Annotated[
        str, typer.Option(help="The GraphQL endpoint.")
    ] = "http://127.0.0.1:8000/graphql",
    token: Annotated[
        str | None,
        typer.Option(envvar="SEGPORT_TOKEN", help="Bearer token (or env SEGPORT_TOKEN)."),
    ] = None,
) -> None:
    """Queue a run of an export now; with --follow, watch it until it ends; with --preview,
    print what it would do instead."""
    settings_or_exit()
    if not token:
        fail("a token is needed: pass --token or set SEGPORT_TOKEN (see `segport token`)")
    if preview and follow:
        fail("--preview sends nothing and starts no run, so there is nothing to --follow")
    from service.runs.client import preview_command, run_command

    if preview:
        raise typer.Exit(preview_command(url, token, export_id))
    raise typer.Exit(run_command(url, token, export_id, follow))


@app.command("export-schema")
def export_schema() -> None:
    """Print the GraphQL schema as SDL (what schema.graphql holds)."""
    settings_or_exit(resolve_secrets=False)  # the schema needs no secret: make none
    from service.api.schema import export_sdl

    sdl = export_sdl()
    typer.echo(sdl, nl=not sdl.endswith("\n"))


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    data_dir: Annotated[
        Path, typer.Option(help="Where the demo keeps its database and secrets.")
    ] = Path("./demo-data"),
) -> None:
    """Embedded service, a local fake Constant Contact and sample data, in one command."""
    # Only to check the environment and set up logging: the demo makes its secrets under
    # --data-dir, so none may be generated next to SEGPORT_DATABASE_URL (./ by default).
    settings_or_exit(resolve_secrets=False)
    from service.demo import run_demo

    run_demo(host, port, data_dir)


@app.command("rotate-keys")
def rotate_keys() -> None:
    """Re-encrypt stored credentials with the first key of SEGPORT_ENCRYPTION_KEY ("new,old")."""
    settings = settings_or_exit()
    from service.connections.keys import KeyRotationError, rotate_credentials
    from service.core import open_services

    async def rotate() -> int:
        async with open_services(settings) as services:
            return await rotate_credentials(services.store, services.cipher, services.locks)

    try:
        rotated = asyncio.run(rotate())
    except KeyRotationError as exc:
        fail(str(exc), code=1)
    typer.echo(
        f"re-encrypted the credentials of {rotated} connection(s) with the first key of "
        "SEGPORT_ENCRYPTION_KEY; the other keys can now be removed"
    )


def main() -> None:
    """Console-script entry point (``segport``)."""
    app()
