"""How export ledgers hold de-duplication keys (e-mail addresses) without showing them.

A ledger entry is found by a keyed 64-bit hash of its key (``key_id``: BLAKE2b keyed
with a secret derived from the first encryption key) and holds the key sealed:
AES-GCM under another derived key, its nonce the key id (a keyed function of the
key itself, so one key always seals alike and no nonce is stored). Only the profiles
hold addresses readably; a ledger read from a backup without the key shows none.

Rotating the first encryption key changes every key id: each export's next run finds
its ledger unknown (``key_scope`` is part of the ledger's basis) and sends everything.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_PADDING = bytes(4)


def _derived(key: str, purpose: bytes) -> bytes:
    raw = base64.urlsafe_b64decode(key.encode())
    return hashlib.blake2b(raw, digest_size=32, person=purpose).digest()


class LedgerSealError(Exception):
    """A sealed key could not be opened with any configured key."""


class LedgerSeal:
    """Key ids and sealed keys for the export ledgers, from the service's encryption keys."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is needed")
        self._id_key = _derived(keys[0], b"segport-ledg-id")
        # Copying a keyed state is about twice as fast as keying a new one per key.
        self._id_state = hashlib.blake2b(digest_size=8, key=self._id_key)
        self._ciphers = [AESGCM(_derived(key, b"segport-ledg-ae")) for key in keys]
        self.key_scope = hashlib.blake2b(self._id_key, digest_size=8).hexdigest()
        """Names the key-id secret (not the secret): ledgers made under another differ."""

    def key_id(self, key: str) -> int:
        state = self._id_state.copy()
        state.update(key.encode())
        return int.from_bytes(state.digest(), signed=True)

    def key_ids(self, keys: Iterable[str]) -> list[int]:
        """:meth:`key_id` of each of ``keys`` (a run's batch at once: the loop is the cost)."""
        copy, from_bytes = self._id_state.copy, int.from_bytes
        ids: list[int] = []
        for key in keys:
            state = copy()
            state.update(key.encode())
            ids.append(from_bytes(state.digest(), signed=True))
        return ids

    def seal(self, key: str, key_id: int) -> bytes:
        """``key`` encrypted; ``key_id`` must be :meth:`key_id` of it."""
        return self._ciphers[0].encrypt(_nonce(key_id), key.encode(), None)

    def seal_many(self, keys: Iterable[str], key_ids: Iterable[int]) -> list[bytes]:
        """:meth:`seal` of each key with its key id."""
        encrypt = self._ciphers[0].encrypt
        return [
            encrypt(key_id.to_bytes(8, signed=True) + _PADDING, key.encode(), None)
            for key, key_id in zip(keys, key_ids, strict=True)
        ]

    def open(self, sealed: bytes, key_id: int) -> str:
        for cipher in self._ciphers:
            try:
                return cipher.decrypt(_nonce(key_id), sealed, None).decode()
            except InvalidTag:
                continue
        raise LedgerSealError("a ledger entry cannot be opened with the configured keys")


def _nonce(key_id: int) -> bytes:
    return key_id.to_bytes(8, signed=True) + _PADDING
