"""Running the fake Mailchimp: in a background thread (``run_fake``) or a process."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from segport_mailchimp.fake.app import create_app
from segport_mailchimp.fake.state import DEMO_API_KEY, FakeMailchimp
from service.plugins import serve_app


@dataclass(frozen=True)
class RunningFake:
    """A fake Mailchimp that answers at ``url``."""

    url: str
    """Base URL, e.g. ``http://127.0.0.1:PORT``."""
    state: FakeMailchimp

    @property
    def api_base_url(self) -> str:
        """The ``SEGPORT_MAILCHIMP_API_BASE_URL`` setting: ``{dc}`` is each key's data center."""
        return f"{self.url}/{{dc}}/3.0"

    @property
    def api_key(self) -> str:
        """The key of the fake's first account."""
        return DEMO_API_KEY

    def environment(self) -> dict[str, str]:
        """The ``SEGPORT_MAILCHIMP_*`` variables that point segport at this fake."""
        return {
            "SEGPORT_MAILCHIMP_API_BASE_URL": self.api_base_url,
            "SEGPORT_MAILCHIMP_OAUTH_BASE_URL": self.url,
            "SEGPORT_MAILCHIMP_CLIENT_ID": self.state.config.client_id,
            "SEGPORT_MAILCHIMP_CLIENT_SECRET": self.state.config.client_secret,
        }


@contextmanager
def run_fake(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    state: FakeMailchimp | None = None,
    **knobs: Any,
) -> Iterator[RunningFake]:
    """Serve a fake Mailchimp with uvicorn in a background thread.

    ``port=0`` picks a free port. Knobs are :class:`~.config.FakeConfig` fields.
    """
    if state is None:
        state = FakeMailchimp(**knobs)
    elif knobs:
        state.configure(**knobs)
    with serve_app(create_app(state), host=host, port=port, name="the fake Mailchimp") as url:
        yield RunningFake(url, state)
