"""Running the fake Constant Contact: in a background thread (``run_fake``) or a process."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn

from segport_constant_contact.fake.app import create_app
from segport_constant_contact.fake.state import FakeConstantContact

STARTUP_TIMEOUT_SECONDS = 10.0


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
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(state), log_level="warning", access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="fake-constant-contact", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError(f"the fake Constant Contact did not start on {host}:{bound_port}")
        time.sleep(0.01)
    try:
        yield RunningFake(f"http://{host}:{bound_port}", state)
    finally:
        server.should_exit = True
        thread.join(timeout=STARTUP_TIMEOUT_SECONDS)
        sock.close()
    # Every body and query sent to the fake must be valid under the published description
    # (the fake refuses what is not with a 400): a test that sends one on purpose says so.
    refused = state.refused_requests()
    if refused and not state.config.refusals_expected:
        raise AssertionError(
            f"the fake Constant Contact refused {len(refused)} request(s) as invalid under the "
            f"published description: {', '.join(sorted(set(refused)))} (set the fake's "
            "refusals_expected knob in a test that sends invalid requests on purpose)"
        )
