"""The fake's gate in front of every API request: the access token, the per-application
rate limits (per second and per day), and the faults the knobs inject."""

from __future__ import annotations

import collections
import datetime as dt
import random
import threading

from segport_constant_contact.fake.answers import FakeAnswer, api_errors, utc_now
from segport_constant_contact.fake.config import FakeConfig
from segport_constant_contact.fake.oauth_server import FakeAuthorizationServer

THROTTLED = {"error_message": "You exceeded the request rate limit"}
"""The published text of the per-second 429 (no error_key is published)."""
QUOTA_BODIES = {
    "keyed": {"error_key": "quota_exceeded", "error_message": "Limit Exceeded"},
    "bare": {"error_key": "too_many_requests", "error_message": "Too Many Requests"},
}
"""The daily quota's 429, unpublished: one a classifier can read, one it cannot."""


class RateGate:
    """Admits or refuses API requests as Constant Contact would, plus injected faults."""

    def __init__(
        self,
        config: FakeConfig,
        lock: threading.RLock,
        rng: random.Random,
        tokens: FakeAuthorizationServer,
    ) -> None:
        self.config = config
        self.lock = lock
        self.rng = rng
        """The fault-injection dice (shared, so one seed makes a run repeatable)."""
        self.tokens = tokens
        self._admitted: collections.deque[float] = collections.deque()
        self._day: dt.date = utc_now().date()
        self._day_count = 0

    def gate(self, authorization: str | None, arrived: float) -> tuple[FakeAnswer | None, set[str]]:
        """Check a request to /v3 that arrived at ``arrived`` (``time.monotonic()``): an error
        answer, or None and the token's scopes.

        The per-second window counts the requests it admitted, so a client that keeps
        knocking while throttled is not throttled forever."""
        with self.lock:
            scopes = self.tokens.bearer_scopes(authorization)
            if scopes is None:
                return FakeAnswer(
                    401,
                    {"error_key": "unauthorized", "error_message": "Unauthorized"},
                ), set()
            now = arrived
            while self._admitted and now - self._admitted[0] >= 1.0:
                self._admitted.popleft()
            if len(self._admitted) >= self.config.requests_per_second:
                return FakeAnswer(429, dict(THROTTLED)), scopes
            self._admitted.append(now)
            today = utc_now().date()
            if today != self._day:
                self._day, self._day_count = today, 0
            if self._day_count >= self.config.requests_per_day:
                return FakeAnswer(429, dict(QUOTA_BODIES[self.config.quota_body])), scopes
            self._day_count += 1
            # The dice roll only for a fault that is switched on, so that requests made
            # before a test turns faults on do not change which requests get them.
            if self.config.throttle_share and self.rng.random() < self.config.throttle_share:
                return FakeAnswer(429, dict(THROTTLED)), scopes
            if (
                self.config.server_error_share
                and self.rng.random() < self.config.server_error_share
            ):
                return api_errors(503, "server_error", "Service Unavailable"), scopes
            return None, scopes

    def slow_delay(self) -> float:
        """Seconds to hold the answer back (the ``slow_share`` knob)."""
        with self.lock:
            if self.config.slow_share and self.rng.random() < self.config.slow_share:
                return self.config.slow_seconds
            return 0.0
