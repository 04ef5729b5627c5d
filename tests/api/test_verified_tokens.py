"""Verified tokens are remembered until they expire, and refused after as a fresh one is.

A frontend polling a page sends the same bearer token every time; the verifier
decodes it once (HS256: the secret cannot change under a running process) and
checks its ``exp`` on every use (:class:`service.access.auth.TokenVerifier`).
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import jwt
import pytest

from service.access.auth import AuthenticationError, TokenVerifier, mint_token
from service.domain import Role
from tests.support.settings import make_settings


async def test_a_token_is_decoded_once_and_refused_once_it_expires(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(sqlite_url)
    verifier = TokenVerifier(settings)
    token = mint_token(settings, "ada", [Role.VIEWER], ttl=timedelta(seconds=1))
    decodes = 0
    real_decode = jwt.decode

    def counted(*args: object, **kwargs: object) -> object:
        nonlocal decodes
        decodes += 1
        return real_decode(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(jwt, "decode", counted)

    first = await verifier.verify(f"Bearer {token}")
    again = await verifier.verify(f"Bearer {token}")
    assert again == first
    assert first.sub == "ada"
    assert decodes == 1

    assert first.expires_at is not None
    await asyncio.sleep(max(first.expires_at.timestamp() - time.time(), 0) + 0.05)
    with pytest.raises(AuthenticationError, match="invalid token: Signature has expired"):
        await verifier.verify(f"Bearer {token}")
    assert decodes == 2


async def test_a_token_signed_otherwise_is_refused_beside_a_remembered_one(
    sqlite_url: str,
) -> None:
    settings = make_settings(sqlite_url)
    verifier = TokenVerifier(settings)
    token = mint_token(settings, "ada", [Role.ADMIN])
    await verifier.verify(f"Bearer {token}")
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"

    with pytest.raises(AuthenticationError, match="invalid token"):
        await verifier.verify(f"Bearer {forged}")
