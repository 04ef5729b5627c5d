"""``segport token`` signs with the server's secret and never makes one; its flags say what
they take: several roles by repeating ``--role``, a lifetime up to a configurable cap."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
import typer
from typer.testing import CliRunner

from service.access.auth import Principal, TokenLifetimeError, TokenVerifier, mint_token
from service.cli import app
from service.domain import Role
from service.settings import Settings
from tests.support.settings import TEST_JWT_SECRET, make_settings

SEGPORT = Path(sys.executable).parent / "segport"


def _segport(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SEGPORT_")}
    return subprocess.run(
        [str(SEGPORT), *args],
        env=clean | env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _server_started_in(data_dir: Path) -> Settings:
    """What ``segport serve`` leaves in ``data_dir`` on its first start: its secrets."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return Settings(database_url=f"sqlite:///{data_dir / 'segport.db'}").with_secrets()


def _verify(settings: Settings, token: str) -> Principal:
    return asyncio.run(TokenVerifier(settings).verify(f"Bearer {token}"))


def _lifetime(token: str) -> timedelta:
    claims = jwt.decode(token, options={"verify_signature": False})
    return datetime.fromtimestamp(claims["exp"], UTC) - datetime.fromtimestamp(claims["iat"], UTC)


# -- item 14: the server's secret, never a new one -----------------------------------------


def test_from_another_directory_without_a_secret_it_fails_and_makes_none(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    result = _segport("token", "--sub", "alice", "--role", "admin", cwd=elsewhere)

    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "SEGPORT_JWT_SECRET" in result.stderr
    assert str(elsewhere / ".segport-secrets") in result.stderr
    assert "--data-dir" in result.stderr
    assert list(elsewhere.iterdir()) == [], "no secrets directory, no database"


def test_data_dir_signs_with_the_secret_the_server_made_there(tmp_path: Path) -> None:
    server = _server_started_in(tmp_path / "demo-data")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    result = _segport(
        "token", "--sub", "alice", "--role", "admin", "--data-dir", str(server.data_dir),
        cwd=elsewhere,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert _verify(server, result.stdout.strip()).roles == {Role.ADMIN}
    assert list(elsewhere.iterdir()) == []


def test_the_servers_database_url_finds_its_secret_from_any_directory(tmp_path: Path) -> None:
    server = _server_started_in(tmp_path / "server")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    result = _segport(
        "token", "--sub", "bob", "--role", "viewer", cwd=elsewhere,
        SEGPORT_DATABASE_URL=server.database_url,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert _verify(server, result.stdout.strip()).sub == "bob"


def test_a_data_dir_without_secrets_is_named(cli_env: Path, runner: CliRunner) -> None:
    empty = cli_env.parent / "not-a-server"
    result = runner.invoke(
        app, ["token", "--sub", "a", "--role", "admin", "--data-dir", str(empty)]
    )
    assert result.exit_code == 2
    assert str(empty / ".segport-secrets") in result.stderr
    assert not empty.exists()


def test_data_dir_is_refused_in_distributed_mode(
    cli_env: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEGPORT_DATABASE_URL", "mongodb://127.0.0.1:1/segport")
    monkeypatch.setenv("SEGPORT_JWT_SECRET", TEST_JWT_SECRET)
    result = runner.invoke(app, ["token", "--sub", "a", "--role", "admin", "--data-dir", "x"])
    assert result.exit_code == 2
    assert "--data-dir" in result.stderr
    assert "SEGPORT_JWT_SECRET" in result.stderr


# -- item 19: the flags say what they take -------------------------------------------------


@pytest.fixture
def served_secret(cli_env: Path) -> Settings:
    return _server_started_in(cli_env.parent)


def test_several_roles_in_one_flag_are_refused_saying_to_repeat_it(
    served_secret: Settings, runner: CliRunner
) -> None:
    result = runner.invoke(app, ["token", "--sub", "a", "--role", "admin,viewer"])
    assert result.exit_code == 2
    assert "repeat --role" in result.stderr
    assert "--role admin --role viewer" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("ttl", ["100000d", "31d", "745h", "99999999999999d"])
def test_a_lifetime_above_the_cap_is_refused_naming_the_setting(
    served_secret: Settings, runner: CliRunner, ttl: str
) -> None:
    result = runner.invoke(app, ["token", "--sub", "a", "--role", "admin", "--ttl", ttl])
    assert result.exit_code == 2
    assert f"--ttl {ttl!r}" in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""
    if ttl != "99999999999999d":  # past what a duration can hold: refused as such
        assert "SEGPORT_TOKEN_MAX_TTL_SECONDS" in result.stderr
        assert "30 days" in result.stderr


def test_the_default_cap_allows_thirty_days(served_secret: Settings, runner: CliRunner) -> None:
    result = runner.invoke(app, ["token", "--sub", "a", "--role", "viewer", "--ttl", "30d"])
    assert result.exit_code == 0, result.output
    assert _lifetime(result.stdout.strip()) == timedelta(days=30)


def test_the_cap_is_a_setting(
    served_secret: Settings, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEGPORT_TOKEN_MAX_TTL_SECONDS", "7200")
    allowed = runner.invoke(app, ["token", "--sub", "a", "--role", "viewer", "--ttl", "2h"])
    refused = runner.invoke(app, ["token", "--sub", "a", "--role", "viewer", "--ttl", "121m"])
    assert allowed.exit_code == 0, allowed.output
    assert refused.exit_code == 2
    assert "SEGPORT_TOKEN_MAX_TTL_SECONDS=7200" in refused.stderr


def test_minting_refuses_a_lifetime_above_the_cap_whoever_asks(sqlite_url: str) -> None:
    settings = make_settings(sqlite_url, token_max_ttl_seconds=3600)
    assert _lifetime(mint_token(settings, "a", [Role.ADMIN], ttl=timedelta(hours=1))) == (
        timedelta(hours=1)
    )
    with pytest.raises(TokenLifetimeError, match="SEGPORT_TOKEN_MAX_TTL_SECONDS"):
        mint_token(settings, "a", [Role.ADMIN], ttl=timedelta(hours=1, seconds=1))


def _command_paths(command: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [path]
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        paths += _command_paths(sub, (*path, name))
    return paths


@pytest.mark.parametrize("path", _command_paths(typer.main.get_command(app)), ids=" ".join)
def test_help_shows_no_value_placeholder_for_flags(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output
    assert "--help" in result.output
