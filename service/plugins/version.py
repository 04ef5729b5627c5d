"""The version of the plugin API, and how a plugin's declared version is read.

The version is ``MAJOR.MINOR``. A minor release only adds (new optional hooks,
new names, new optional arguments and fields with defaults); a major release
may remove or change what plugins rely on. docs/plugins.md states the policy.
A plugin module declares the version it was built for in
:data:`DECLARATION_ATTRIBUTE`; the plugin manager refuses one it cannot serve.
"""

from __future__ import annotations

import re

PLUGIN_API_VERSION = "1.3"
"""The plugin API this segport provides (``MAJOR.MINOR``)."""

DECLARATION_ATTRIBUTE = "SEGPORT_PLUGIN_API"
"""The module attribute in which a plugin declares the API version it was built for."""

_VERSION = re.compile(r"^(?P<major>\d+)\.(?P<minor>\d+)$")


def parse_version(text: str) -> tuple[int, int] | None:
    """``"1.2"`` as ``(1, 2)``; None for anything that is not ``MAJOR.MINOR``."""
    match = _VERSION.match(text)
    if match is None:
        return None
    return int(match["major"]), int(match["minor"])


def incompatibility(declared: object) -> str | None:
    """Why a plugin that declares ``declared`` cannot be loaded, or None when it can.

    A plugin built for another major version, or for a later minor version (it may
    use what this segport does not have yet), cannot."""
    parsed = parse_version(declared) if isinstance(declared, str) else None
    if parsed is None:
        return (
            f"declares {DECLARATION_ATTRIBUTE} = {declared!r}, which is not a 'MAJOR.MINOR' string"
        )
    provided = parse_version(PLUGIN_API_VERSION)
    assert provided is not None  # a constant of this module
    if parsed[0] != provided[0]:
        return (
            f"was built for segport plugin API {declared}, but this segport provides "
            f"{PLUGIN_API_VERSION} (major versions differ): install a release of the plugin "
            f"built for {provided[0]}.x"
        )
    if parsed[1] > provided[1]:
        return (
            f"was built for segport plugin API {declared}, newer than the {PLUGIN_API_VERSION} "
            "this segport provides: upgrade segport"
        )
    return None
