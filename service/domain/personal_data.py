"""Keeping personal values out of what a run reports: its error samples and its message.

Every viewer reads a run's errors and message, they are stored for as long as the
run and they reach the logs, while the words they carry often come from a
destination that quotes the value it refused (``email 'john@…' is not valid``).
So the records themselves clean what they are given (see
:class:`~service.domain.model.RunError` and
:class:`~service.domain.model.ExportRun`), whoever builds them:

- :func:`without_email_addresses` (a run's message): every e-mail-like token
  (anything with an ``@`` between two non-separators, whatever surrounds it,
  however long, escaped or not) becomes :data:`REDACTED`, and control characters
  (NUL, tabs, escapes) become spaces.
- :func:`safe_reason` (an error sample, which names a record): the same, and
  every quoted value is removed too, so a refused name, phone or truncated
  address does not survive either. An error sample is its profile id, field,
  code and this reason: never the value.
"""

from __future__ import annotations

import re
from functools import lru_cache

REDACTED = "<redacted>"

_SEPARATORS = r" \u00a0'\"`<>()\[\]{},;"
"""What ends a token. Not control characters: a tab or NUL inside an address is part of
it (``tab\\tjane@x``, ``bob\\x00@x``), and must go with it."""
_EMAIL_LIKE = re.compile(rf"[^{_SEPARATORS}]*@[^{_SEPARATORS}@\-.][^{_SEPARATORS}]*")
"""A token holding ``@`` followed by something that could start a domain ("one @-sign"
is not an address; ``a@b``, ``@victim-example``, ``tab\\tjane@x`` and 70 characters of
local part are)."""

_QUOTED = re.compile(
    r"""(?<![\w])'(?:[^'\\\n]|\\.)*'(?![\w])|(?<![\w])"(?:[^"\\\n]|\\.)*"(?![\w])"""
)
"""A value in single or double quotes as a program quotes it (``repr``, JSON), not the
apostrophe inside a word ("can't")."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@lru_cache(maxsize=4096)
def without_email_addresses(text: str) -> str:
    """``text`` with every e-mail-like token redacted and control characters as spaces."""
    return _CONTROL.sub(" ", _EMAIL_LIKE.sub(REDACTED, text))


@lru_cache(maxsize=4096)
def safe_reason(text: str) -> str:
    """The reason of an error sample: ``text`` without quoted values or e-mail addresses."""
    # Quotes first: a quoted value may hold separators that would split its address.
    return without_email_addresses(_QUOTED.sub(REDACTED, text))
