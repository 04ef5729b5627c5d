"""Running the fake Constant Contact: in a background thread (``run_fake``) or a process."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from segport_constant_contact.fake.app import create_app
from segport_constant_contact.fake.state import FakeConstantContact
from service.plugins import serve_app


@dataclass(frozen=True)
class RunningFake:
    """A fake Constant Contact that answers at ``url``."""

    url: str
    """Base URL, e.g. ``http://127.0.0.1:PORT``: the ``..._AUTH_BASE_URL`` setting."""
    state: FakeConstantContact

    @property
    def api_base_url(self) -> str:
        """The ``..._API_BASE_URL`` setting."""
        return f"{self.url}/v3"

    @property
    def auth_base_url(self) -> str:
        return self.url

    def environment(self) -> dict[str, str]:
        """The ``SEGPORT_CONSTANT_CONTACT_*`` variables that point segport at this fake."""
        return {
            "SEGPORT_CONSTANT_CONTACT_CLIENT_ID": self.state.config.client_id,
            "SEGPORT_CONSTANT_CONTACT_CLIENT_SECRET": self.state.config.client_secret,
            "SEGPORT_CONSTANT_CONTACT_API_BASE_URL": self.api_base_url,
            "SEGPORT_CONSTANT_CONTACT_AUTH_BASE_URL": self.auth_base_url,
            # A registration open to both flows is driven with PKCE, so that the service's
            # tests exercise the challenge; a server-only one with the secret.
            "SEGPORT_CONSTANT_CONTACT_OAUTH_FLOW": (
                "server" if self.state.config.oauth_flow == "server" else "pkce"
            ),
        }


@contextmanager
def run_fake(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    state: FakeConstantContact | None = None,
    **knobs: Any,
) -> Iterator[RunningFake]:
    """Serve a fake Constant Contact with uvicorn in a background thread.

    ``port=0`` picks a free port. Knobs are :class:`FakeConfig` fields.
    """
    state = state or FakeConstantContact(**knobs)
    if state is not None and knobs:
        state.configure(**knobs)
    with serve_app(
        create_app(state), host=host, port=port, name="the fake Constant Contact"
    ) as url:
        yield RunningFake(url, state)
    # Every body and query sent to the fake must be valid under the published description
    # (the fake refuses what is not with a 400): a test that sends one on purpose says so.
    refused = state.refused_requests()
    if refused and not state.config.refusals_expected:
        raise AssertionError(
            f"the fake Constant Contact refused {len(refused)} request(s) as invalid under the "
            f"published description: {', '.join(sorted(set(refused)))} (set the fake's "
            "refusals_expected knob in a test that sends invalid requests on purpose)"
        )
