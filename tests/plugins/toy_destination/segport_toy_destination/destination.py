"""The "Webhook collector" destination: contacts are POSTed as JSON batches to a collector.

The collector's protocol:

- ``GET /account`` with header ``X-Api-Key`` answers ``{"name": "..."}`` (401 for a bad key);
- ``POST /collect/<endpoint>`` with body ``{"contacts": [{"email": ..., "name": ...}, ...]}``
  answers ``{"accepted": 2, "rejected": [{"index": 1, "code": "...", "message": "..."}]}``;
- ``POST /remove/<endpoint>`` with body ``{"emails": ["...", ...]}`` takes those addresses off
  the endpoint and answers ``{"failed": [{"index": 0, "message": "..."}]}`` (every other
  address is gone, whether or not it was there).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import orjson

from service.plugins import (
    AuthorizationLost,
    BatchOutcome,
    Destination,
    DestinationContext,
    DestinationError,
    DestinationLimits,
    DestinationSession,
    InvalidCredentials,
    ListMember,
    MappingTarget,
    RecordRejection,
    Rejection,
    RemovalOutcome,
    SettingError,
    SettingSpec,
    TransientDestinationError,
    UploadBatch,
)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ENDPOINT = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_HEAD = b'{"contacts":['
_TAIL = b"]}"
_MAX_ATTEMPTS = 4
NAME_MAX_LENGTH = 100


class WebhookCollector(Destination):
    key = "toy_webhook"
    display_name = "Webhook collector"
    auth_kind = "api_key"
    connection_settings = (
        SettingSpec(
            "apiKey",
            "API key",
            required=True,
            secret=True,
            description="The collector's key, sent as the X-Api-Key header.",
        ),
    )
    export_settings = (
        SettingSpec(
            "endpoint",
            "Endpoint name",
            required=True,
            max_length=64,
            description="Where the collector files the contacts: letters, digits, - and _.",
        ),
    )
    mapping_targets = (
        MappingTarget("email", "E-mail address", required=True, max_length=254, kind="email"),
        MappingTarget("name", "Name", max_length=NAME_MAX_LENGTH),
    )
    limits = DestinationLimits(
        batch_max_records=500,
        batch_max_bytes=256_000,
        requests_per_second=20,
        max_concurrent_uploads=2,
        removal_batch_max_records=500,
        # The collector serves at most 4 requests at once per key, whichever process
        # sends them: the service's in-flight cap keeps the whole deployment within it.
        max_requests_in_flight=4,
    )
    # Mirror exports may take contacts who left the segment off the endpoint.
    can_remove_list_members = True

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def validate_export_settings(self, settings: Mapping[str, Any]) -> list[SettingError]:
        errors = super().validate_export_settings(settings)
        endpoint = settings.get("endpoint")
        if isinstance(endpoint, str) and endpoint and not _ENDPOINT.match(endpoint):
            errors.append(
                SettingError(
                    "endpoint",
                    f"Endpoint name {endpoint!r} may hold only lower-case letters, digits, "
                    "'-' and '_'",
                )
            )
        return errors

    def build_record(self, values: Mapping[str, Any]) -> dict[str, Any] | Rejection:
        email = values.get("email")
        if not isinstance(email, str) or not email.strip():
            return Rejection("EMAIL_MISSING", "the profile has no e-mail address", "email")
        email = email.strip()
        if len(email) > 254 or not _EMAIL.match(email):
            return Rejection("EMAIL_INVALID", f"{email!r} is not an e-mail address", "email")
        record: dict[str, Any] = {"email": email}
        name = values.get("name")
        if name is not None and str(name).strip():
            name = str(name).strip()
            if len(name) > NAME_MAX_LENGTH:
                message = f"the name is longer than {NAME_MAX_LENGTH} characters"
                return Rejection("TOO_LONG", message, "name")
            record["name"] = name
        return record

    def record_dedupe_key(self, record: Mapping[str, Any]) -> str:
        return str(record["email"]).lower()

    def batch_envelope_size(self, export_settings: Mapping[str, Any]) -> int:
        return len(_HEAD) + len(_TAIL)

    async def verify_connection(self, ctx: DestinationContext) -> str | None:
        response = await ctx.http.get(f"{self.base_url}/account", headers=await _headers(ctx))
        if response.status_code in (401, 403):
            raise InvalidCredentials("the collector refused the API key")
        if response.status_code != 200:
            raise DestinationError(f"the collector answered {response.status_code}")
        return str(response.json()["name"])

    def open_session(self, ctx: DestinationContext) -> DestinationSession:
        return WebhookSession(self.base_url, ctx)


class WebhookSession(DestinationSession):
    """Uploads one run's batches; the collector answers synchronously, so no ``confirm``."""

    def __init__(self, base_url: str, ctx: DestinationContext) -> None:
        endpoint = ctx.export_settings["endpoint"]
        self._url = f"{base_url}/collect/{endpoint}"
        self._remove_url = f"{base_url}/remove/{endpoint}"
        self._ctx = ctx

    async def upload(self, batch: UploadBatch) -> BatchOutcome:
        body = _HEAD + b",".join(record.encoded for record in batch.records) + _TAIL
        response = await self._post(self._url, body)
        if response.status_code == 200:
            return _outcome(batch, response.json())
        # The collector refused the whole batch: its words, verbatim.
        return BatchOutcome(batch_error=response.text)

    async def remove_list_members(self, members: Sequence[ListMember]) -> list[RemovalOutcome]:
        # The keys are the lower-cased addresses (record_dedupe_key).
        body = orjson.dumps({"emails": [member.key for member in members]})
        response = await self._post(self._remove_url, body)
        if response.status_code != 200:
            return [RemovalOutcome(m.key, removed=False, reason=response.text) for m in members]
        failed = {int(item["index"]): str(item["message"]) for item in response.json()["failed"]}
        return [
            RemovalOutcome(member.key, removed=index not in failed, reason=failed.get(index))
            for index, member in enumerate(members)
        ]

    async def _post(self, url: str, body: bytes) -> httpx.Response:
        """POST with retries of 429, 5xx and transport errors; any other answer is returned."""
        headers = {**await _headers(self._ctx), "Content-Type": "application/json"}
        for attempt in range(1, _MAX_ATTEMPTS + 1):
            async with self._ctx.rate_limiter.in_flight():
                await self._ctx.rate_limiter.acquire()
                try:
                    response: httpx.Response | None = await self._ctx.http.post(
                        url, content=body, headers=headers
                    )
                except httpx.TransportError as exc:
                    response, problem = None, f"the collector is unreachable: {exc}"
            if response is not None:
                if response.status_code in (401, 403):
                    # The key stopped working: the connection must be given a new one.
                    words = "the collector no longer accepts the API key"
                    await self._ctx.credentials.rejected(words)
                    raise AuthorizationLost(words)
                if response.status_code != 429 and response.status_code < 500:
                    return response
                problem = f"the collector answered {response.status_code}"
            if attempt < _MAX_ATTEMPTS:
                await self._ctx.sleep(0.5 * 2**attempt)
        raise TransientDestinationError(problem)


def _outcome(batch: UploadBatch, answer: dict[str, Any]) -> BatchOutcome:
    rejected = [
        RecordRejection(
            batch.records[item["index"]].profile_id,
            Rejection(item.get("code", "REJECTED"), item.get("message", "rejected")),
        )
        for item in answer.get("rejected", [])
    ]
    return BatchOutcome(accepted=int(answer["accepted"]), rejected=rejected)


async def _headers(ctx: DestinationContext) -> dict[str, str]:
    secrets = await ctx.credentials.secrets()
    return {"X-Api-Key": str(secrets["apiKey"])}
