"""A configuration that cannot work stops every command with one line naming the variable
(exit status 2): no traceback, and no secret repeated back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from typer.testing import CliRunner

from service.cli import app
from tests.support.net import free_port
from tests.support.settings import TEST_ENCRYPTION_KEY, TEST_JWT_SECRET

SEGPORT = Path(sys.executable).parent / "segport"

COMMANDS = {
    "token": ["token", "--sub", "a", "--role", "admin"],
    "serve": ["serve", "--port", "1"],  # never reached: the settings are read first
    "worker": ["worker"],
    "import": ["import", "profiles", "profiles.jsonl"],
    "rotate-keys": ["rotate-keys"],
}


def _one_line_naming(result_stderr: str, variable: str) -> None:
    lines = result_stderr.strip().splitlines()
    assert len(lines) == 1, result_stderr
    assert variable in lines[0]
    assert "Traceback" not in result_stderr


@pytest.fixture
def in_tmp(cli_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(cli_env.parent)
    (cli_env.parent / "profiles.jsonl").write_text('{"id": "p1"}\n')
    return cli_env.parent


@pytest.mark.usefixtures("in_tmp")
@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    "key",
    [
        "abc",
        "short-key-that-is-not-base64",
        Fernet.generate_key().decode()[:-2],
        f"{TEST_ENCRYPTION_KEY},not-a-key",
    ],
)
def test_an_encryption_key_that_is_not_a_fernet_key_stops_every_command(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, command: str, key: str
) -> None:
    monkeypatch.setenv("SEGPORT_ENCRYPTION_KEY", key)
    result = runner.invoke(app, COMMANDS[command])
    assert result.exit_code == 2, result.output
    _one_line_naming(result.stderr, "SEGPORT_ENCRYPTION_KEY")
    assert "not-a-key" not in result.stderr, "no key is repeated"
    assert "abc" not in result.stderr, "no key is repeated"
    assert result.stdout == ""


def test_the_bad_key_of_several_is_named_by_its_position(
    in_tmp: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEGPORT_ENCRYPTION_KEY", f"{TEST_ENCRYPTION_KEY},not-a-key")
    result = runner.invoke(app, COMMANDS["token"])
    assert "key 2 of 2" in result.stderr


@pytest.mark.usefixtures("in_tmp")
@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SEGPORT_PUBLIC_URL", "foo"),
        ("SEGPORT_PUBLIC_URL", "127.0.0.1:8000"),
        ("SEGPORT_PUBLIC_URL", "http://"),
        ("SEGPORT_PUBLIC_URL", "http://host:port"),
        ("SEGPORT_UI_URL", "ui.example.com"),
        ("SEGPORT_NOTIFY_WEBHOOK_URL", "hooks/secret-path"),
        ("SEGPORT_JWT_JWKS_URL", "ftp://issuer/jwks"),
        ("SEGPORT_REDIS_URL", "127.0.0.1:6379"),
    ],
)
def test_a_url_that_cannot_work_stops_every_command(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, command: str, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    result = runner.invoke(app, COMMANDS[command])
    assert result.exit_code == 2, result.output
    _one_line_naming(result.stderr, variable)


def test_the_public_url_is_repeated_but_a_webhook_url_is_not(
    in_tmp: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEGPORT_PUBLIC_URL", "foo")
    assert "'foo'" in runner.invoke(app, COMMANDS["token"]).stderr
    monkeypatch.delenv("SEGPORT_PUBLIC_URL")
    monkeypatch.setenv("SEGPORT_NOTIFY_WEBHOOK_URL", "hooks/T000/B000/secret-path")
    assert "secret-path" not in runner.invoke(app, COMMANDS["token"]).stderr


@pytest.mark.usefixtures("in_tmp")
@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("secret", ["x", "a" * 31])
def test_a_jwt_secret_shorter_than_32_bytes_stops_every_command_in_distributed_mode(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, command: str, secret: str
) -> None:
    monkeypatch.setenv("SEGPORT_DATABASE_URL", "mongodb://127.0.0.1:1/segport")
    monkeypatch.setenv("SEGPORT_REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("SEGPORT_ENCRYPTION_KEY", TEST_ENCRYPTION_KEY)
    monkeypatch.setenv("SEGPORT_JWT_SECRET", secret)
    result = runner.invoke(app, COMMANDS[command])
    assert result.exit_code == 2, result.output
    _one_line_naming(result.stderr, "SEGPORT_JWT_SECRET")
    assert "32 bytes" in result.stderr
    assert f"({len(secret)} bytes)" in result.stderr


def test_a_jwt_secret_of_32_bytes_is_enough(
    in_tmp: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEGPORT_DATABASE_URL", "mongodb://127.0.0.1:1/segport")
    monkeypatch.setenv("SEGPORT_ENCRYPTION_KEY", TEST_ENCRYPTION_KEY)
    monkeypatch.setenv("SEGPORT_JWT_SECRET", "s" * 32)
    result = runner.invoke(app, COMMANDS["token"])
    assert result.exit_code == 0, result.output


def test_a_worker_whose_redis_does_not_answer_stops_with_one_line_naming_it(
    tmp_path: Path,
) -> None:
    port = free_port()  # nothing listens there
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGPORT_")} | {
        "SEGPORT_DATABASE_URL": f"sqlite:///{tmp_path / 'segport.db'}",
        "SEGPORT_REDIS_URL": f"redis://:hunter2-redis-password@127.0.0.1:{port}/0",
        "SEGPORT_JWT_SECRET": TEST_JWT_SECRET,
        "SEGPORT_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
    }
    result = subprocess.run(
        [str(SEGPORT), "worker"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    _one_line_naming(result.stderr, "SEGPORT_REDIS_URL")
    assert f"127.0.0.1:{port}" in result.stderr
    assert "hunter2" not in result.stderr
    assert result.stdout == ""
