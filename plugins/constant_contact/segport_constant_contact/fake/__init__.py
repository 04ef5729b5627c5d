"""A fake Constant Contact (OAuth2 authorization server and V3 API) for tests and demos.

It behaves as docs/constant-contact.md describes (Constant Contact's published
description): both OAuth code flows with single-use codes, rotating refresh tokens, JWT
access tokens, per-application rate limits, JSON bulk imports refused when they break
the published schema, activities alone and as a collection, lists (paged, deleted ones
with ``deleted_at``), custom fields, and the silent drop past 4 MB (recorded, so tests
can assert it never happens). Knobs inject faults. Start it with :func:`run_fake` or
``python -m segport_constant_contact.fake --port 8765``.
"""

from segport_constant_contact.fake.app import create_app
from segport_constant_contact.fake.config import FakeConfig
from segport_constant_contact.fake.contacts_api import GENERAL_INTEREST_LIST_ID, NEWSLETTER_LIST_ID
from segport_constant_contact.fake.server import RunningFake, run_fake
from segport_constant_contact.fake.state import FakeConstantContact, LoggedRequest

__all__ = [
    "GENERAL_INTEREST_LIST_ID",
    "NEWSLETTER_LIST_ID",
    "FakeConfig",
    "FakeConstantContact",
    "LoggedRequest",
    "RunningFake",
    "create_app",
    "run_fake",
]
