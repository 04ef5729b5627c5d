"""Encryption of stored credentials (Fernet, with key rotation through MultiFernet)."""

from __future__ import annotations

from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class CredentialDecryptionError(Exception):
    """Stored credentials could not be decrypted with any configured key."""


class CredentialCipher:
    """Encrypts with the first key; decrypts with any (so keys rotate without downtime)."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is needed")
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])
        except ValueError as exc:  # the key itself is malformed
            raise ValueError(
                "SEGPORT_ENCRYPTION_KEY must be urlsafe-base64 32-byte Fernet keys, comma-separated"
            ) from exc

    def encrypt(self, data: dict[str, Any]) -> str:
        return self._fernet.encrypt(orjson.dumps(data)).decode()

    def decrypt(self, token: str) -> dict[str, Any]:
        try:
            value = orjson.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken as exc:
            raise CredentialDecryptionError(
                "stored credentials cannot be decrypted with the configured keys"
            ) from exc
        if not isinstance(value, dict):
            raise CredentialDecryptionError("stored credentials are not an object")
        return value

    def rotate(self, token: str) -> str:
        """Re-encrypt ``token`` with the current (first) key."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken as exc:
            raise CredentialDecryptionError(
                "stored credentials cannot be decrypted with the configured keys"
            ) from exc
