"""``python -m segport_mailchimp.fake``: serve a fake Mailchimp until Ctrl-C."""

from __future__ import annotations

import argparse

import uvicorn

from segport_mailchimp.fake.app import create_app
from segport_mailchimp.fake.state import DEMO_API_KEY, FakeMailchimp


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m segport_mailchimp.fake",
        description="Serve a fake Mailchimp Marketing API for tests and demos.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per API call")
    parser.add_argument("--max-connections", type=int, default=10, help="in flight per key")
    args = parser.parse_args(argv)
    state = FakeMailchimp(latency_seconds=args.latency, max_connections=args.max_connections)
    base = f"http://{args.host}:{args.port}"
    audiences = state.accounts[DEMO_API_KEY].audiences.values()
    print(
        "Fake Mailchimp; point segport at it with:\n"
        f"  SEGPORT_MAILCHIMP_API_BASE_URL={base}/{{dc}}/3.0\n"
        f"API key: {DEMO_API_KEY}\n"
        f"Audiences: {', '.join(f'{a.name}={a.id}' for a in audiences)}\n"
        f"Knobs: POST {base}/__fake__/config; stats: GET {base}/__fake__/stats",
        flush=True,
    )
    uvicorn.run(create_app(state), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
