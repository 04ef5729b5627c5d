"""``segport token`` mints JWTs the service accepts, and refuses bad roles and lifetimes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from typer.testing import CliRunner

from service.access.auth import Principal, TokenVerifier
from service.cli import app, parse_ttl
from service.domain import Role
from service.settings import load_settings


@pytest.fixture(autouse=True)
def server_secrets(cli_env: Path) -> None:
    """The secrets `segport serve` makes on its first start: `segport token` signs with them."""
    load_settings()


def test_a_minted_token_is_accepted_by_the_verifier_with_its_roles(
    cli_env: Path, runner: CliRunner
) -> None:
    result = runner.invoke(app, ["token", "--sub", "alice", "--role", "admin", "--role", "viewer"])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    principal = _verify(token)
    assert principal.sub == "alice"
    assert principal.roles == {Role.ADMIN, Role.VIEWER}


def test_stdout_holds_only_the_token_so_scripts_can_capture_it(
    cli_env: Path, runner: CliRunner
) -> None:
    result = runner.invoke(app, ["token", "--sub", "bob", "--role", "viewer"])
    assert result.exit_code == 0
    assert len(result.stdout.strip().splitlines()) == 1
    assert result.stdout.count(".") == 2  # header.payload.signature


def test_ttl_sets_the_expiry(cli_env: Path, runner: CliRunner) -> None:
    result = runner.invoke(app, ["token", "--sub", "c", "--role", "contributor", "--ttl", "7d"])
    claims = jwt.decode(result.stdout.strip(), options={"verify_signature": False})
    lifetime = datetime.fromtimestamp(claims["exp"], UTC) - datetime.fromtimestamp(
        claims["iat"], UTC
    )
    assert lifetime == timedelta(days=7)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("45s", timedelta(seconds=45)), ("30m", timedelta(minutes=30)), ("1h", timedelta(hours=1))],
)
def test_ttl_units(text: str, expected: timedelta) -> None:
    assert parse_ttl(text) == expected


@pytest.mark.parametrize("ttl", ["1y", "0h", "-1h", "h", "1.5h", ""])
def test_a_bad_ttl_is_refused_naming_the_value(cli_env: Path, runner: CliRunner, ttl: str) -> None:
    result = runner.invoke(app, ["token", "--sub", "alice", "--role", "admin", "--ttl", ttl])
    assert result.exit_code == 2
    assert f"--ttl {ttl!r}" in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_an_unknown_role_is_refused_naming_it_and_the_allowed_ones(
    cli_env: Path, runner: CliRunner
) -> None:
    result = runner.invoke(app, ["token", "--sub", "alice", "--role", "boss"])
    assert result.exit_code == 2
    assert "'boss'" in result.stderr
    assert "admin, contributor, viewer" in result.stderr
    assert result.stdout == ""


def test_a_role_is_required(cli_env: Path, runner: CliRunner) -> None:
    result = runner.invoke(app, ["token", "--sub", "alice"])
    assert result.exit_code == 2
    assert "--role" in result.output


def _verify(token: str) -> Principal:
    return asyncio.run(TokenVerifier(load_settings()).verify(f"Bearer {token}"))
