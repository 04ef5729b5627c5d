"""Key rotation: every stored credential ends up encrypted with the new key alone."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet, InvalidToken

from service.access.crypto import CredentialCipher
from service.connections import keys
from service.connections.keys import KeyRotationError, rotate_credentials
from service.core import open_services
from service.domain import Connection, ConnectionStatus, ConnectionUsableBy, new_id, utcnow
from tests.support.settings import make_settings

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()
KEY_C = Fernet.generate_key().decode()


def connection(credentials: str | None) -> Connection:
    now = utcnow()
    return Connection(
        id=new_id(),
        display_name=f"cc {new_id()[-6:]}",
        destination_type="constant_contact",
        usable_by=ConnectionUsableBy.ADMINS,
        status=ConnectionStatus.CONNECTED,
        created_by="alice",
        created_at=now,
        updated_at=now,
        credentials=credentials,
    )


async def write_with_key_a(
    database_url: str, secrets: Sequence[dict[str, Any] | None]
) -> list[Connection]:
    written: list[Connection] = []
    async with open_services(
        make_settings(database_url, encryption_key=KEY_A), load_entry_points=False
    ) as services:
        for secret in secrets:
            sealed = services.cipher.encrypt(secret) if secret is not None else None
            c = connection(sealed)
            await services.store.save_connection(c)
            written.append(c)
    return written


async def stored(database_url: str, connection_id: str) -> Connection:
    async with open_services(
        make_settings(database_url, encryption_key=KEY_B), load_entry_points=False
    ) as services:
        found = await services.store.get_connection(connection_id)
        assert found is not None
        return found


def sealed(connection: Connection) -> str:
    """The connection's encrypted credentials, which these tests' connections have."""
    assert connection.credentials is not None
    return connection.credentials


async def test_rotation_leaves_credentials_readable_with_the_new_key_alone(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keys, "PAGE_SIZE", 2)  # several pages with a handful of rows
    secrets = [{"access_token": f"at-{i}", "refresh_token": f"rt-{i}"} for i in range(5)]
    written = await write_with_key_a(sqlite_url, secrets)

    async with open_services(
        make_settings(sqlite_url, encryption_key=f"{KEY_B},{KEY_A}"), load_entry_points=False
    ) as services:
        # Before rotation the new configuration already reads the old credentials.
        first = await services.store.get_connection(written[0].id)
        assert first is not None
        assert services.cipher.decrypt(sealed(first)) == secrets[0]
        assert await rotate_credentials(services.store, services.cipher, services.locks) == 5

    only_b = CredentialCipher([KEY_B])
    only_a = Fernet(KEY_A.encode())
    for original, secret in zip(written, secrets, strict=True):
        row = await stored(sqlite_url, original.id)
        assert row.credentials != original.credentials
        assert only_b.decrypt(sealed(row)) == secret
        with pytest.raises(InvalidToken):
            only_a.decrypt(sealed(row).encode())
        assert row.updated_at == original.updated_at, "re-encryption is not a user edit"


async def test_connections_without_credentials_are_left_alone(sqlite_url: str) -> None:
    (pending,) = await write_with_key_a(sqlite_url, [None])
    async with open_services(
        make_settings(sqlite_url, encryption_key=f"{KEY_B},{KEY_A}"), load_entry_points=False
    ) as services:
        assert await rotate_credentials(services.store, services.cipher, services.locks) == 0
    assert (await stored(sqlite_url, pending.id)).credentials is None


async def test_rotation_is_idempotent(sqlite_url: str) -> None:
    (c,) = await write_with_key_a(sqlite_url, [{"api_key": "k-1"}])
    settings = make_settings(sqlite_url, encryption_key=f"{KEY_B},{KEY_A}")
    for _ in range(2):
        async with open_services(settings, load_entry_points=False) as services:
            assert await rotate_credentials(services.store, services.cipher, services.locks) == 1
    assert CredentialCipher([KEY_B]).decrypt(sealed(await stored(sqlite_url, c.id))) == {
        "api_key": "k-1"
    }


async def test_credentials_no_key_decrypts_are_named_and_the_rest_still_rotate(
    sqlite_url: str,
) -> None:
    readable, unreadable = await write_with_key_a(sqlite_url, [{"a": 1}, {"b": 2}])
    async with open_services(
        make_settings(sqlite_url, encryption_key=KEY_C), load_entry_points=False
    ) as services:
        foreign = await services.store.get_connection(unreadable.id)
        assert foreign is not None
        foreign.credentials = Fernet(Fernet.generate_key()).encrypt(b'{"b": 2}').decode()
        await services.store.save_connection(foreign)
    async with open_services(
        make_settings(sqlite_url, encryption_key=f"{KEY_B},{KEY_A}"), load_entry_points=False
    ) as services:
        with pytest.raises(KeyRotationError) as caught:
            await rotate_credentials(services.store, services.cipher, services.locks)
    assert caught.value.report.rotated == 1
    assert caught.value.report.failed == [unreadable.id]
    assert unreadable.id in str(caught.value)
    assert "SEGPORT_ENCRYPTION_KEY" in str(caught.value)
    assert CredentialCipher([KEY_B]).decrypt(sealed(await stored(sqlite_url, readable.id)))


def segport_command(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).with_name("segport")), *args],
        env={"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", ""), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_segport_rotate_keys_command_rotates_and_reports_the_count(
    sqlite_url: str, tmp_path: Path
) -> None:
    (c,) = await write_with_key_a(sqlite_url, [{"access_token": "at-cli"}])
    env = {
        "SEGPORT_DATABASE_URL": sqlite_url,
        "SEGPORT_ENCRYPTION_KEY": f"{KEY_B},{KEY_A}",
        "SEGPORT_JWT_SECRET": "cli-test-jwt-secret-0123456789abcdef0123456789",
        "SEGPORT_LOG_FORMAT": "json",
    }
    done = segport_command("rotate-keys", env=env)
    assert done.returncode == 0, done.stderr
    assert "re-encrypted the credentials of 1 connection(s)" in done.stdout
    assert KEY_A not in done.stdout + done.stderr
    assert KEY_B not in done.stdout + done.stderr
    row = await stored(sqlite_url, c.id)
    assert CredentialCipher([KEY_B]).decrypt(sealed(row)) == {"access_token": "at-cli"}


async def test_segport_rotate_keys_without_the_old_key_fails_naming_the_connection(
    sqlite_url: str,
) -> None:
    (c,) = await write_with_key_a(sqlite_url, [{"access_token": "at-lost"}])
    env = {
        "SEGPORT_DATABASE_URL": sqlite_url,
        "SEGPORT_ENCRYPTION_KEY": KEY_B,
        "SEGPORT_JWT_SECRET": "cli-test-jwt-secret-0123456789abcdef0123456789",
        "SEGPORT_LOG_FORMAT": "json",
    }
    done = segport_command("rotate-keys", env=env)
    assert done.returncode == 1
    assert c.id in done.stderr
    assert "Traceback" not in done.stderr
