"""The fake Constant Contact's knobs: behaviour switches and fault injection.

Every knob can be given at start (``run_fake(**knobs)``, the CLI), changed at runtime on
the state object (``state.configure(...)``) or, from another process, with
``POST /__fake__/config`` and a JSON object of knobs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

DEFAULT_REDIRECT_URIS = (
    "http://127.0.0.1:8000/oauth/callback",
    "http://localhost:8000/oauth/callback",
)


@dataclass
class FakeConfig:
    # the registered application
    client_id: str = "fake-client-id"
    client_secret: str = "fake-client-secret"
    redirect_uris: list[str] = field(default_factory=lambda: list(DEFAULT_REDIRECT_URIS))
    consent_page: bool = False
    """Show a minimal consent page at the authorize step instead of approving at once."""
    oauth_flow: str = "either"
    """How the application is registered: ``server`` (authorization code with the client
    secret, HTTP Basic; a code asked with a PKCE challenge also needs its verifier),
    ``pkce`` (a public client: PKCE S256 required, no secret, ``client_id`` in the form),
    or ``either`` (the default: each request is held to the rules of the flow it uses)."""

    # tokens
    rotating_refresh_tokens: bool = True
    """Each refresh returns a new refresh token and invalidates the old; else long-lived."""
    access_token_ttl_seconds: float = 24 * 3600
    code_ttl_seconds: float = 300
    token_requests_per_second: int | None = None
    """The token endpoint's own limit (reported as 1 per second); None: unlimited."""

    # rate limits (per client application)
    requests_per_second: int = 4
    requests_per_day: int = 10_000

    # request limits of the JSON import
    max_body_bytes: int = 4_000_000
    """Bytes past this are silently dropped (contacts past it are lost), as Constant
    Contact does; the fake records each time it happens."""
    max_contacts: int = 40_000

    # activities
    polls_to_complete: int = 2
    """Polls after which an activity is completed (the first one shows it processing)."""
    unsubscribed: set[str] = field(default_factory=set)
    """E-mails (any case) of unsubscribed contacts: counted, never added to a list."""
    failing_activities: int = 0
    """The next N import activities end ``failed``."""
    imports_stall: bool = False
    """Import activities made from now on never end (they stay ``processing``): a run
    waits on them until it is cancelled. Other activities end as usual."""
    ending_states: list[str] = field(default_factory=list)
    """How the next activities (imports, list memberships, contact exports) end, one state
    each (``failed``, ``cancelled``, ``timed_out`` or ``completed``); consumed before
    ``failing_activities`` (which only imports take)."""
    foreign_next_link: str | None = None
    """When set (``https://elsewhere.example``), ``_links.next`` hrefs point to that host."""
    quota_body: str = "keyed"
    """The daily quota's 429 body, which nothing published shows: ``keyed``
    (``error_key`` ``quota_exceeded``) or ``bare`` (a body no rule explains)."""

    # fault injection
    throttle_share: float = 0.0
    """Share of API requests answered 429 throttled regardless of the rate."""
    server_error_share: float = 0.0
    """Share of API requests answered 503."""
    slow_share: float = 0.0
    """Share of API requests answered only after ``slow_seconds``."""
    slow_seconds: float = 0.5
    queued_activities_429s: int = 0
    """The next N activity POSTs answer 429 "You exceeded 1,000 queued activities"."""
    seed: int | None = None
    """Seed of the fault-injection dice (None: unpredictable)."""
    refusals_expected: bool = False
    """False: a request answered 400 (a body or query the published description does not
    allow) fails the test when ``run_fake`` ends; set it in tests that send one on purpose."""

    def update(self, knobs: dict[str, Any]) -> None:
        """Set knobs by name; an unknown name or a value of the wrong kind is refused."""
        known = {f.name: f for f in fields(self)}
        for name, value in knobs.items():
            if name not in known:
                raise ValueError(f"unknown knob {name!r}; known: {', '.join(sorted(known))}")
            current = getattr(self, name)
            if name == "oauth_flow" and value not in ("server", "pkce", "either"):
                raise ValueError(f"knob 'oauth_flow' must be server, pkce or either, not {value!r}")
            if name == "quota_body" and value not in ("keyed", "bare"):
                raise ValueError(f"knob 'quota_body' must be keyed or bare, not {value!r}")
            if isinstance(current, set):
                value = {str(v).lower() for v in value}
            elif isinstance(current, list):
                value = [str(v) for v in value]
            elif name == "foreign_next_link":
                value = None if value is None else str(value)
            elif isinstance(current, bool):
                if not isinstance(value, bool):
                    raise ValueError(f"knob {name!r} must be true or false, not {value!r}")
            elif isinstance(current, int | float) and value is not None:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError(f"knob {name!r} must be a number, not {value!r}")
                value = type(current)(value)
            if name.endswith("_share") and not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"knob {name!r} must be between 0 and 1, not {value!r}")
            setattr(self, name, value)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["unsubscribed"] = sorted(self.unsubscribed)
        data["client_secret"] = "***"  # shown nowhere, even by a fake
        return data
