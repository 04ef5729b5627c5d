"""The pluggy entry point: registers the Mailchimp destination with segport."""

from __future__ import annotations

from segport_mailchimp.demo import MailchimpDemo
from segport_mailchimp.destination import Mailchimp
from service.plugins import DemoFixture, Destination, hookimpl

SEGPORT_PLUGIN_API = "1.3"
"""The segport plugin API this plugin is built for (the in-flight cap, member removal, more
than one way to connect)."""


@hookimpl
def register_destinations() -> list[Destination]:
    return [Mailchimp()]


@hookimpl
def register_demo_fixtures() -> list[DemoFixture]:
    return [MailchimpDemo()]
