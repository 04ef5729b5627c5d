"""``python -m segport_constant_contact.fake``: serve a fake Constant Contact until Ctrl-C."""

from __future__ import annotations

import argparse
import gc
from typing import Any

import uvicorn

from segport_constant_contact.fake.app import create_app
from segport_constant_contact.fake.state import FakeConstantContact


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m segport_constant_contact.fake",
        description="Serve a fake Constant Contact (OAuth2 and V3 API) for tests and demos.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--client-id", default="fake-client-id")
    parser.add_argument("--client-secret", default="fake-client-secret")
    parser.add_argument(
        "--redirect-uri",
        action="append",
        help="a registered redirect URI (repeatable; default: segport's local callbacks)",
    )
    parser.add_argument("--consent-page", action="store_true", help="ask before approving")
    parser.add_argument("--long-lived-refresh-tokens", action="store_true")
    parser.add_argument("--requests-per-day", type=int, default=10_000)
    args = parser.parse_args(argv)
    knobs: dict[str, Any] = {
        "client_id": args.client_id,
        "client_secret": args.client_secret,
        "consent_page": args.consent_page,
        "rotating_refresh_tokens": not args.long_lived_refresh_tokens,
        "requests_per_day": args.requests_per_day,
    }
    if args.redirect_uri:
        knobs["redirect_uris"] = args.redirect_uri
    state = FakeConstantContact(**knobs)
    base = f"http://{args.host}:{args.port}"
    print(
        "Fake Constant Contact; point segport at it with:\n"
        f"  SEGPORT_CONSTANT_CONTACT_CLIENT_ID={args.client_id}\n"
        "  SEGPORT_CONSTANT_CONTACT_CLIENT_SECRET=<the --client-secret>\n"
        f"  SEGPORT_CONSTANT_CONTACT_API_BASE_URL={base}/v3\n"
        f"  SEGPORT_CONSTANT_CONTACT_AUTH_BASE_URL={base}\n"
        f"Lists: {', '.join(f'{fl.name}={fl.list_id}' for fl in state.lists.values())}\n"
        f"Knobs: POST {base}/__fake__/config; stats: GET {base}/__fake__/stats",
        flush=True,
    )
    # The fake keeps every contact it receives (millions of small acyclic dicts). A full
    # cyclic collection over them stalls the server for hundreds of milliseconds, and
    # requests arriving meanwhile would be stamped late and in a burst, distorting the
    # rate limits judged on arrival times. Young collections still run.
    gc.set_threshold(700, 10, 1_000_000)
    uvicorn.run(create_app(state), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
