"""The fake Mailchimp's knobs: limits, latency and fault injection.

Every knob can be given at start (``run_fake(**knobs)``, the CLI), changed at runtime on
the state object (``state.configure(...)``) or, from another process, with
``POST /__fake__/config`` and a JSON object of knobs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class FakeConfig:
    client_id: str = "fake-mailchimp-client"
    """The registered app of the OAuth2 flow (its secret below)."""
    client_secret: str = "fake-mailchimp-secret"
    max_connections: int = 10
    """Requests in flight at once per API key; one more answers 429 "Too Many Requests"."""
    max_batch_members: int = 500
    """Members per batch subscribe call; more is refused whole (400)."""
    latency_seconds: float = 0.0
    """How long every API call takes, the fake's own work included (the benchmark uses
    0.15)."""
    batch_polls_to_finish: int = 2
    """Polls of a batch operation after which it reports ``finished``."""
    fake_domains: set[str] = field(default_factory=lambda: {"throwaway.example"})
    """Domains whose addresses Mailchimp judges fake ("looks fake or invalid")."""

    # fault injection
    throttle_share: float = 0.0
    """Share of API requests answered 429 whatever the number in flight."""
    server_error_share: float = 0.0
    """Share of API requests answered 503."""
    slow_share: float = 0.0
    """Share of API requests answered only after ``slow_seconds`` more."""
    slow_seconds: float = 0.5
    server_errors_next: int = 0
    """The next N API requests answer 500 (then normal service resumes)."""
    seed: int | None = None
    """Seed of the fault-injection dice (None: unpredictable)."""

    def update(self, knobs: dict[str, Any]) -> None:
        """Set knobs by name; an unknown name or a value of the wrong kind is refused."""
        known = {f.name: f for f in fields(self)}
        for name, value in knobs.items():
            if name not in known:
                raise ValueError(f"unknown knob {name!r}; known: {', '.join(sorted(known))}")
            current = getattr(self, name)
            if name in ("client_id", "client_secret"):
                value = str(value)
            elif isinstance(current, set):
                if not isinstance(value, list | set | tuple):
                    raise ValueError(f"knob {name!r} must be a list, not {value!r}")
                value = {str(v).lower() for v in value}
            elif name == "seed":
                if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                    raise ValueError(f"knob 'seed' must be an integer or null, not {value!r}")
            elif isinstance(current, int | float):
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError(f"knob {name!r} must be a number, not {value!r}")
                if value < 0:
                    raise ValueError(f"knob {name!r} must not be negative, not {value!r}")
                value = type(current)(value)
            if name.endswith("_share") and not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"knob {name!r} must be between 0 and 1, not {value!r}")
            setattr(self, name, value)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["fake_domains"] = sorted(self.fake_domains)
        data["client_secret"] = "***"  # shown nowhere, even by a fake
        return data
