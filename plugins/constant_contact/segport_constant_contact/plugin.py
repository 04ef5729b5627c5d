"""The pluggy entry point: registers the Constant Contact destination with segport."""

from __future__ import annotations

from segport_constant_contact.demo import ConstantContactDemo
from segport_constant_contact.destination import ConstantContact
from service.plugins import DemoFixture, Destination, hookimpl

SEGPORT_PLUGIN_API = "1.2"
"""The segport plugin API this plugin is built for."""


@hookimpl
def register_destinations() -> list[Destination]:
    return [ConstantContact()]


@hookimpl
def register_demo_fixtures() -> list[DemoFixture]:
    return [ConstantContactDemo()]
