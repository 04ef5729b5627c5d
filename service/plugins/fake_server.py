"""Serving a fake of a destination's API (an ASGI app) in a background thread.

Plugins ship fakes of their destination's API for their tests, the demo and benchmarks;
:func:`serve_app` runs one with uvicorn beside the code that talks to it. It is part of
the public plugin API (``service.plugins``): a plugin's own code may import it, not only
its tests.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SERVER_START_SECONDS = 10.0
"""How long :func:`serve_app` waits for its server to answer."""


@contextmanager
def serve_app(
    app: Any, *, host: str = "127.0.0.1", port: int = 0, name: str = "app"
) -> Iterator[str]:
    """Serve the ASGI ``app`` with uvicorn in a background thread while the block runs;
    yields its base URL (``port=0``: a free port). ``name`` names the thread, and the
    error when the server does not start within :data:`SERVER_START_SECONDS`."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    import uvicorn  # only where a fake is served, not in every process that loads plugins

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + SERVER_START_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError(f"{name} did not start on {host}:{bound_port}")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=SERVER_START_SECONDS)
        sock.close()
