"""Every call to Constant Contact's V3 API goes through :class:`ApiTransport`.

It waits on the deployment's shared rate limiter before each request, sends the
connection's bearer token (refreshed once after a 401), and absorbs what Constant
Contact asks callers to absorb (docs/constant-contact.md, "Rate limits" and "Errors"):
per-second throttling and 500/503s are retried with exponential backoff and full jitter
(bounded, honouring ``Retry-After``); "1,000 queued activities" waits and retries; the
daily quota (as :mod:`.throttling` recognises it) pauses every process until it ends,
and either waits (during a run, saying so on the run) or raises
:class:`~.errors.DailyQuotaSpent` (outside a run). It follows links only on the
configured API base. Anything else is handed back to the caller, or raised as the
plugin API's errors with Constant Contact's own words. Tokens never appear in a message.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import random
from collections.abc import Mapping
from typing import Any

import httpx
import orjson

from segport_constant_contact.errors import DailyQuotaSpent, ForeignLink
from segport_constant_contact.settings import ConstantContactSettings
from segport_constant_contact.throttling import (
    TooMany,
    UnexplainedStreak,
    classify_429,
    quota_pause_end,
)
from service.plugins import (
    AuthorizationLost,
    DestinationContext,
    DestinationError,
    OAuthTokens,
    TransientDestinationError,
)

RETRYABLE_STATUS = frozenset({500, 502, 503, 504})
QUEUED_ACTIVITIES_MAX_WAIT = 300.0
QUEUED_ACTIVITIES_MAX_TRIES = 24
"""With waits doubling from 30 s to 5 minutes, about 1.5 hours before the job gives up."""


def error_messages(response: httpx.Response) -> str:
    """Constant Contact's error words, verbatim: the ``error_message`` of an array body or of
    a single-object body (401, 429), or the OAuth ``error_description``."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        text = response.text.strip()
        return text[:500] if text else f"HTTP {response.status_code}"
    items = body if isinstance(body, list) else [body]
    messages = []
    for item in items:
        if isinstance(item, Mapping):
            message = item.get("error_message") or item.get("error_description")
            message = message or item.get("message") or item.get("error")
            if message:
                messages.append(str(message))
    return "; ".join(messages) if messages else f"HTTP {response.status_code}"


def error_key(response: httpx.Response) -> str | None:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None
    if isinstance(body, list) and body and isinstance(body[0], Mapping):
        body = body[0]
    if isinstance(body, Mapping):
        key = body.get("error_key") or body.get("error")
        return str(key) if key else None
    return None


def retry_after_seconds(response: httpx.Response) -> float | None:
    """``Retry-After`` as seconds (delta or HTTP date); None when absent or unreadable."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def next_utc_midnight(now: dt.datetime | None = None) -> dt.datetime:
    return quota_pause_end(None, now)


class ApiTransport:
    """Authorized, rate-limited, retrying requests to the API base for one context."""

    def __init__(
        self,
        ctx: DestinationContext,
        settings: ConstantContactSettings,
        rng: random.Random | None = None,
        streak: UnexplainedStreak | None = None,
    ) -> None:
        self.ctx = ctx
        self.settings = settings
        self._rng = rng or random.Random()
        self._streak = streak or UnexplainedStreak()
        self._tokens: OAuthTokens | None = None

    def url(self, path_or_href: str) -> str:
        """An API path (``/contact_lists``), or a ``_links`` href (``/v3/contact_lists?..``
        or an absolute URL). Only URLs on the configured API base are returned: a link to
        another host or path raises :class:`ForeignLink` before anything is sent there."""
        base = httpx.URL(self.settings.api_base_url.rstrip("/") + "/")
        if path_or_href.startswith(("http://", "https://", "//")):
            target = httpx.URL(path_or_href)
            same_origin = (target.scheme, target.host, target.port) == (
                base.scheme,
                base.host,
                base.port,
            )
            if not same_origin or not target.path.startswith(base.path):
                raise ForeignLink(
                    "Constant Contact answered with a link outside the configured API base "
                    f"({target.scheme}://{target.host}); it was not followed"
                )
            return str(target)
        if path_or_href.startswith(base.path):
            # A root-relative href (``/v3/...``) under the base's own path.
            path_or_href = "/" + path_or_href[len(base.path) :]
        elif path_or_href.startswith("/v3/"):
            path_or_href = path_or_href[len("/v3") :]
        return self.settings.api_url(path_or_href)

    def _backoff(self, attempt: int, hinted: float | None) -> float:
        # Full jitter: a random wait up to an exponentially growing ceiling, so that
        # several workers throttled at once do not come back at once.
        ceiling = min(
            self.settings.backoff_max_seconds, self.settings.backoff_base_seconds * 2**attempt
        )
        delay = self._rng.uniform(0, ceiling)
        return max(delay, hinted) if hinted is not None else delay

    async def _wait(self, seconds: float, reason: str, until: dt.datetime | None = None) -> None:
        reporter = self.ctx.reporter
        if reporter is not None:
            await reporter.waiting(reason, until)
        await self.ctx.sleep(seconds)
        if reporter is not None and reporter.cancelled():
            raise TransientDestinationError(f"cancelled while waiting: {reason}")

    async def _quota_spent(self, words: str, retry_after: float | None) -> None:
        until = quota_pause_end(retry_after)
        # The reason says what and why; the service adds when it ends (no repeated time).
        reason = f"Constant Contact's daily request quota is spent ({words})"
        await self.ctx.rate_limiter.pause_until(until, reason)
        reporter = self.ctx.reporter
        if reporter is None:
            raise DailyQuotaSpent(reason, until)
        # The run says why it waits; the wait itself is the shared limiter's (the next
        # acquire), so that an admin who lifts the pause wakes every run waiting on it.
        await reporter.waiting(reason, until)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        """Send one API request until Constant Contact gives an answer worth returning.

        Returns 2xx answers and client errors other than 401/403/429 (the caller knows what
        a 400 or 404 means for it). Raises AuthorizationLost on a 401 after one refresh,
        DestinationError on 403, TransientDestinationError when retries run out.
        """
        headers = {"Accept": "application/json"}
        if content is not None:
            headers["Content-Type"] = "application/json"
        url = self.url(path)
        refreshed = False
        attempt = 0
        queued_waits = 0
        while True:
            if self._tokens is None:
                self._tokens = await self.ctx.credentials.tokens()
            headers["Authorization"] = f"Bearer {self._tokens.access_token}"
            await self.ctx.rate_limiter.acquire()
            try:
                response = await self.ctx.http.request(
                    method, url, params=params, content=content, headers=headers
                )
            except httpx.TransportError as exc:
                attempt += 1
                problem = f"{type(exc).__name__} talking to Constant Contact"
                if attempt >= self.settings.max_tries:
                    raise TransientDestinationError(
                        f"{problem}; gave up after {attempt} tries"
                    ) from None
                await self.ctx.sleep(self._backoff(attempt, None))
                continue

            status = response.status_code
            if status == 429:
                words = error_messages(response)
                hinted = retry_after_seconds(response)
                kind = classify_429(words, error_key(response), hinted).kind
                if kind is TooMany.UNEXPLAINED:
                    if self._streak.unexplained():
                        kind = TooMany.QUOTA
                else:
                    self._streak.answered()
                if kind is TooMany.QUOTA:
                    await self._quota_spent(words, hinted)
                    continue
                if kind is TooMany.QUEUED_ACTIVITIES:
                    queued_waits += 1
                    if queued_waits > QUEUED_ACTIVITIES_MAX_TRIES:
                        raise TransientDestinationError(words)
                    seconds = min(
                        QUEUED_ACTIVITIES_MAX_WAIT,
                        self.settings.queued_activities_wait_seconds * 2 ** (queued_waits - 1),
                    )
                    await self._wait(max(seconds, hinted or 0.0), f"Constant Contact: {words}")
                    continue
            else:
                self._streak.answered()
            if status == 401:
                if refreshed:
                    raise AuthorizationLost(
                        "Constant Contact refused the refreshed access token: "
                        + error_messages(response)
                    )
                refreshed = True
                self._tokens = await self.ctx.credentials.refresh(self._tokens)
                continue
            if status == 403:
                raise DestinationError(
                    "Constant Contact refused the request (missing scope or privilege): "
                    + error_messages(response)
                )
            if status == 429 or status in RETRYABLE_STATUS:
                attempt += 1
                if attempt >= self.settings.max_tries:
                    raise TransientDestinationError(
                        f"Constant Contact answered {status} {error_messages(response)}; "
                        f"gave up after {attempt} tries"
                    )
                await self.ctx.sleep(self._backoff(attempt, retry_after_seconds(response)))
                continue
            return response

    async def get_json(
        self, path: str, params: Mapping[str, str | int] | None = None
    ) -> dict[str, Any]:
        response = await self.request("GET", path, params=params)
        if response.status_code != 200:
            raise DestinationError(
                f"Constant Contact answered {response.status_code} to GET {path.split('?')[0]}: "
                + error_messages(response)
            )
        body = orjson.loads(response.content)
        if not isinstance(body, dict):
            raise DestinationError(f"Constant Contact answered GET {path} with a non-object")
        return body

    async def get_pages(
        self, path: str, params: Mapping[str, str | int], items: str
    ) -> list[dict[str, Any]]:
        """Every item of a paged collection: the ``items`` array of each page, following
        ``_links.next`` (only on the API base: :meth:`url` refuses any other link)."""
        found: list[dict[str, Any]] = []
        page: str | None = path
        query: Mapping[str, str | int] | None = params
        seen: set[str] = set()
        while page:
            body = await self.get_json(page, query)
            found.extend(item for item in body.get(items) or [] if isinstance(item, dict))
            links = body.get("_links")
            next_link = links.get("next") if isinstance(links, dict) else None
            href = next_link.get("href") if isinstance(next_link, dict) else None
            page = href if isinstance(href, str) and href and href not in seen else None
            if page is not None:
                seen.add(page)
                self.url(page)  # refuse a foreign link before any request is made
            query = None  # the next link carries its own query
        return found
