"""A fake Mailchimp Marketing API (3.0) for tests, demos and benchmarks.

It behaves as the plugin README's "The fake Mailchimp" section describes: API keys
with data centers (each under its own ``/{dc}/3.0`` path), ping, the account, audiences
and merge fields (paged), batch subscribe (at most 500 members, ``update_existing``,
errors per member, compliance states, fake addresses, forgotten members), members,
archiving, batch operations with their gzipped results, 10 requests in flight per key
(one more answers 429), problem-document errors, and knobs for latency and faults.
Start it with :func:`run_fake` or ``python -m segport_mailchimp.fake --port 8766``.
"""

from segport_mailchimp.fake.app import create_app
from segport_mailchimp.fake.config import FakeConfig
from segport_mailchimp.fake.records import FakeAudience, FakeMember, FakeMergeField, subscriber_hash
from segport_mailchimp.fake.server import RunningFake, run_fake
from segport_mailchimp.fake.state import (
    CUSTOMERS_LIST_ID,
    DEMO_API_KEY,
    NEWSLETTER_LIST_ID,
    FakeMailchimp,
    LoggedRequest,
)

__all__ = [
    "CUSTOMERS_LIST_ID",
    "DEMO_API_KEY",
    "NEWSLETTER_LIST_ID",
    "FakeAudience",
    "FakeConfig",
    "FakeMailchimp",
    "FakeMember",
    "FakeMergeField",
    "LoggedRequest",
    "RunningFake",
    "create_app",
    "run_fake",
    "subscriber_hash",
]
