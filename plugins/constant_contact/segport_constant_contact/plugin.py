"""The pluggy entry point: registers the Constant Contact destination with segport."""

from __future__ import annotations

from segport_constant_contact.destination import ConstantContact
from service.plugins import Destination, hookimpl


@hookimpl
def register_destinations() -> list[Destination]:
    return [ConstantContact()]
