"""The OAuth flow, imported late: ``service.oauth`` is written beside the API.

Importing it when first needed keeps the API importable (and ``/oauth/callback``
routable) regardless of which lands first.
"""

from __future__ import annotations

import importlib
from typing import Any


def oauth_module() -> Any:
    """``service.oauth`` (``OAuthFlow``, ``OAuthError``, ``oauth_callback``)."""
    return importlib.import_module("service.oauth")
