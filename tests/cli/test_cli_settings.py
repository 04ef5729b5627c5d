"""A configuration problem ends a command with one line naming the variable, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.cli import app


def test_distributed_mode_without_secrets_names_the_missing_variables(
    cli_env: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEGPORT_DATABASE_URL", "mongodb://x")
    result = runner.invoke(app, ["token", "--sub", "a", "--role", "admin"])
    assert result.exit_code == 2
    assert "SEGPORT_JWT_SECRET" in result.stderr
    assert "SEGPORT_ENCRYPTION_KEY" in result.stderr
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_bad_database_url_is_named_with_its_value(
    cli_env: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEGPORT_DATABASE_URL", "postgres://db")
    profiles = cli_env.parent / "x.jsonl"
    profiles.write_text('{"id": "p1"}\n')
    result = runner.invoke(app, ["import", "profiles", str(profiles)])
    assert result.exit_code == 2
    assert "SEGPORT_DATABASE_URL 'postgres://db'" in result.stderr
    assert "Traceback" not in result.output


def test_an_out_of_range_number_names_its_variable(
    cli_env: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEGPORT_MAX_PAGE_SIZE", "0")
    result = runner.invoke(app, ["token", "--sub", "a", "--role", "admin"])
    assert result.exit_code == 2
    assert "SEGPORT_MAX_PAGE_SIZE" in result.stderr
    assert "greater than or equal to 1" in result.stderr


def test_worker_without_redis_says_it_needs_segport_redis_url(
    cli_env: Path, runner: CliRunner
) -> None:
    result = runner.invoke(app, ["worker"])
    assert result.exit_code == 2
    assert "SEGPORT_REDIS_URL" in result.stderr


def test_run_without_a_token_says_how_to_get_one(cli_env: Path, runner: CliRunner) -> None:
    result = runner.invoke(app, ["run", "RXhwb3J0OjE="])
    assert result.exit_code == 2
    assert "SEGPORT_TOKEN" in result.stderr
