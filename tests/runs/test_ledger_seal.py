"""How ledgers hold keys: stable keyed ids, sealed keys that open only with the service's
encryption keys (also after a rotation adds a new first key), no readable address."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from service.access.ledger_seal import LedgerSeal, LedgerSealError

KEY = Fernet.generate_key().decode()
OTHER = Fernet.generate_key().decode()
ADDRESS = "ann.example@example.com"


def test_key_ids_are_stable_signed_64_bit_and_depend_on_the_key() -> None:
    seal = LedgerSeal([KEY])
    key_id = seal.key_id(ADDRESS)
    assert key_id == LedgerSeal([KEY]).key_id(ADDRESS)
    assert -(2**63) <= key_id < 2**63
    assert seal.key_id("bob@example.com") != key_id
    assert LedgerSeal([OTHER]).key_id(ADDRESS) != key_id
    assert LedgerSeal([OTHER]).key_scope != seal.key_scope


def test_a_sealed_key_shows_no_address_and_opens_back() -> None:
    seal = LedgerSeal([KEY])
    key_id = seal.key_id(ADDRESS)
    sealed = seal.seal(ADDRESS, key_id)
    assert b"example" not in sealed
    assert seal.open(sealed, key_id) == ADDRESS
    assert len(sealed) == len(ADDRESS) + 16  # the address and its tag, no stored nonce


def test_a_sealed_key_opens_with_an_older_key_after_rotation_and_not_without() -> None:
    old = LedgerSeal([KEY])
    key_id = old.key_id(ADDRESS)
    sealed = old.seal(ADDRESS, key_id)
    assert LedgerSeal([OTHER, KEY]).open(sealed, key_id) == ADDRESS
    with pytest.raises(LedgerSealError):
        LedgerSeal([OTHER]).open(sealed, key_id)
    with pytest.raises(LedgerSealError):
        old.open(sealed, key_id + 1)  # bound to its key id


def test_a_batch_gets_the_key_ids_and_sealed_keys_one_at_a_time_would() -> None:
    seal = LedgerSeal([KEY])
    keys = [ADDRESS, "", "zoë@example.com", ADDRESS.upper()]
    key_ids = seal.key_ids(keys)
    assert key_ids == [seal.key_id(key) for key in keys]
    sealed = seal.seal_many(keys, key_ids)
    assert sealed == [seal.seal(key, key_id) for key, key_id in zip(keys, key_ids, strict=True)]
    assert [seal.open(s, i) for s, i in zip(sealed, key_ids, strict=True)] == keys
