"""Every call to Mailchimp goes through here: the key's data center, HTTP Basic, the
concurrency cap, and retries of 429 and server errors with backoff and jitter.

Mailchimp allows 10 requests in flight per API key (more answer 429) and documents no
rate. Each request holds one of the deployment-wide in-flight slots of its key
(``ctx.rate_limiter.in_flight``, declared as ``max_requests_in_flight``), so every
worker together stays within the cap; a 429 that comes anyway (another client of the
same key) is retried after a backoff, bounded by ``max_tries``.
"""

from __future__ import annotations

import random
from typing import Any

import httpx
import orjson

from segport_mailchimp.errors import MailchimpError, problem_words
from segport_mailchimp.keys import data_center, key_scope
from segport_mailchimp.settings import MailchimpSettings
from service.plugins import (
    AuthorizationLost,
    DestinationContext,
    DestinationError,
    TransientDestinationError,
)

RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})


class ApiTransport:
    """Calls the Mailchimp API of one connection."""

    def __init__(
        self, ctx: DestinationContext, settings: MailchimpSettings, *, oauth: bool = False
    ) -> None:
        self._ctx = ctx
        self._settings = settings
        self._oauth = oauth
        """Authenticate with the connection's OAuth token (its data center in the tokens'
        ``extra``) instead of an API key."""
        self._key: str | None = None
        self.attempts = 0
        """HTTP requests sent (retries included)."""

    async def api_key(self) -> str:
        if self._key is None:
            secrets = await self._ctx.credentials.secrets()
            key = secrets.get("apiKey")
            if not isinstance(key, str) or data_center(key) is None:
                raise AuthorizationLost(
                    "the connection holds no valid Mailchimp API key; an admin must replace it"
                )
            self._key = key.strip()
        return self._key

    async def _identity(self) -> tuple[str, str, dict[str, str], tuple[str, str] | None]:
        """(secret, data center, headers, basic auth) of this connection's credentials."""
        if self._oauth:
            tokens = await self._ctx.credentials.tokens()
            dc = str(tokens.extra.get("dc") or "")
            if data_center(f"{'0' * 32}-{dc}") is None:
                raise AuthorizationLost(
                    "the connection's Mailchimp authorization names no data center; "
                    "an admin must connect it again"
                )
            token = tokens.access_token
            return token, dc, {"Authorization": f"OAuth {token}"}, None
        key = await self.api_key()
        key_dc = data_center(key)
        assert key_dc is not None  # checked by api_key()
        return key, key_dc, {}, ("segport", key)

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, str | int] | None = None,
    ) -> Any:
        """The answer's JSON (None for 204). Raises AuthorizationLost (401),
        TransientDestinationError (429 and 5xx once the tries are spent) and
        MailchimpError (other refusals), each with Mailchimp's words."""
        key, dc, auth_headers, basic = await self._identity()
        url = self._settings.api_url(dc, path)
        settings = self._settings
        # orjson: a batch of 500 members encodes several times faster than with httpx's json=.
        body = None if json is None else orjson.dumps(json)
        headers = dict(auth_headers)
        if json is not None:
            headers["Content-Type"] = "application/json"
        problem = ""
        for attempt in range(1, settings.max_tries + 1):
            async with self._ctx.rate_limiter.in_flight(key_scope(key)):
                await self._ctx.rate_limiter.acquire()
                self.attempts += 1
                try:
                    response = await self._ctx.http.request(
                        method,
                        url,
                        content=body,
                        headers=headers,
                        params=params,
                        auth=basic,
                    )
                except httpx.TransportError as exc:
                    response = None
                    problem = f"Mailchimp did not answer ({type(exc).__name__})"
            if response is not None:
                if response.status_code < 300:
                    # orjson again: a batch's answer names each of its 500 members.
                    return None if response.status_code == 204 else orjson.loads(response.content)
                words = problem_words(response)
                if response.status_code == 401:
                    await self._ctx.credentials.rejected(words)
                    raise AuthorizationLost(words)
                if response.status_code not in RETRIED_STATUSES:
                    raise MailchimpError(response.status_code, words)
                problem = words
            if attempt < settings.max_tries:
                await self._ctx.sleep(self._backoff(attempt))
        raise TransientDestinationError(
            f"{problem} (after {settings.max_tries} tries); the run is retried later"
        )

    def _backoff(self, attempt: int) -> float:
        """Exponential with full jitter, bounded."""
        ceiling = min(
            self._settings.backoff_max_seconds,
            self._settings.backoff_base_seconds * 2 ** (attempt - 1),
        )
        return random.uniform(ceiling / 2, ceiling)

    async def pages(self, path: str, items: str, *, count: int = 1000) -> list[dict[str, Any]]:
        """Every item of a paged collection (``count``/``offset``, ``total_items``)."""
        found: list[dict[str, Any]] = []
        offset = 0
        while True:
            answer = await self.call("GET", path, params={"count": count, "offset": offset})
            page = answer.get(items) if isinstance(answer, dict) else None
            if not isinstance(page, list):
                raise DestinationError(f"Mailchimp's answer to GET {path} has no {items!r}")
            found.extend(item for item in page if isinstance(item, dict))
            offset += len(page)
            if not page or offset >= int(answer.get("total_items", 0)):
                return found
