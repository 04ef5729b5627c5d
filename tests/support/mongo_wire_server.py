"""A MongoDB-compatible wire server for tests (mongoeco), run as a subprocess under Python 3.13.

Usage: ``python mongo_wire_server.py [PORT]`` (0 or nothing: any free port).
Prints ``LISTENING <host> <port>`` once it accepts connections, then serves
until it is terminated. Not importable from the test process (mongoeco needs
Python 3.13); ``tests/conftest.py`` starts it.
"""

from __future__ import annotations

import asyncio
import signal
import sys


async def serve(port: int) -> None:
    from mongoeco.wire import AsyncMongoEcoProxyServer  # type: ignore[import-not-found]  # 3.13 only

    server = AsyncMongoEcoProxyServer(host="127.0.0.1", port=port)
    address = await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"LISTENING {address.host} {address.port}", flush=True)
    try:
        await stop.wait()
    finally:
        await server.close()


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    asyncio.run(serve(port))


if __name__ == "__main__":
    main()
