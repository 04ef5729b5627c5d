"""Mailchimp API keys: ``<32 hexadecimal digits>-<data center>`` (e.g. ``...-us6``)."""

from __future__ import annotations

import hashlib
import re

_KEY = re.compile(r"^[0-9a-f]{32}-(?P<dc>[a-z]+[0-9]+)$")

KEY_SHAPE = "32 hexadecimal digits, a dash and the data center (e.g. '…-us6')"


def data_center(api_key: str) -> str | None:
    """The data center of a well-formed key (``us6``), or None. Never echoes the key."""
    match = _KEY.match(api_key.strip())
    return match["dc"] if match else None


def key_scope(api_key: str) -> str:
    """What the concurrency cap counts by: the key itself, never stored in clear (a digest)."""
    return hashlib.sha256(api_key.strip().encode()).hexdigest()[:24]
