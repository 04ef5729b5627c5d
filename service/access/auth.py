"""Who is calling: JWT bearer tokens verified with PyJWT, and minting for development."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from service.domain import Role
from service.settings import Settings


class AuthenticationError(Exception):
    """No token, a malformed, badly signed or expired token, or one with unknown roles."""


class TokenLifetimeError(ValueError):
    """A token was asked for with no lifetime or one above ``SEGPORT_TOKEN_MAX_TTL_SECONDS``."""


@dataclass(frozen=True, slots=True)
class Principal:
    sub: str
    roles: frozenset[Role]
    expires_at: datetime | None = None
    """The token's ``exp``: a websocket opened with the token closes then (see service.api)."""

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    @property
    def is_admin(self) -> bool:
        return Role.ADMIN in self.roles

    @property
    def is_contributor(self) -> bool:
        return Role.CONTRIBUTOR in self.roles


def parse_bearer(header: str | None) -> str:
    if not header:
        raise AuthenticationError("missing Authorization header")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("Authorization must be 'Bearer <token>'")
    return token.strip()


VERIFIED_TOKENS_REMEMBERED = 1024
"""Tokens whose signature and claims were verified, remembered until they expire."""


class TokenVerifier:
    """Verifies bearer tokens; with the shared secret (HS256), remembers those verified.

    A frontend polling a page sends the same token with every request, and
    decoding it (the signature, the key checks PyJWT makes of the secret, the
    claims) was a few percent of a small page's CPU. A token verified once
    stays valid, with the same secret and the same claims, until its ``exp``,
    which is checked on every use as PyJWT would (a token seen again after
    it is decoded afresh, and refused the same way). With a JWKS the keys may
    change, so every token is decoded.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._jwks = jwt.PyJWKClient(settings.jwt_jwks_url) if settings.jwt_jwks_url else None
        self._verified: OrderedDict[str, Principal] = OrderedDict()

    async def verify(self, authorization: str | None) -> Principal:
        token = parse_bearer(authorization)
        known = self._verified.get(token)
        if known is not None:
            if not known.expired(datetime.now(UTC)):
                self._verified.move_to_end(token)
                return known
            del self._verified[token]
        principal = await self._decode(token)
        if self._jwks is None:
            self._verified[token] = principal
            while len(self._verified) > VERIFIED_TOKENS_REMEMBERED:
                self._verified.popitem(last=False)
        return principal

    async def _decode(self, token: str) -> Principal:
        try:
            if self._jwks is not None:
                key = (await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)).key
                algorithms = ["RS256"]
            else:
                key = self._settings.jwt_secret_value()
                algorithms = ["HS256"]
            options = {"require": ["sub", "exp"]}
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                issuer=self._settings.jwt_issuer,
                audience=self._settings.jwt_audience,
                options=options,  # type: ignore[arg-type]
            )
        except jwt.PyJWTError as exc:
            raise AuthenticationError(f"invalid token: {exc}") from exc
        return principal_from_claims(claims)


def principal_from_claims(claims: dict[str, object]) -> Principal:
    sub = claims.get("sub")
    raw_roles = claims.get("roles", [])
    if not isinstance(sub, str) or not sub:
        raise AuthenticationError("token has no subject")
    if not isinstance(raw_roles, list) or not raw_roles:
        raise AuthenticationError("token has no roles")
    try:
        roles = frozenset(Role(r) for r in raw_roles)
    except ValueError as exc:
        raise AuthenticationError(f"token has an unknown role: {exc}") from exc
    exp = claims.get("exp")
    expires_at = datetime.fromtimestamp(exp, UTC) if isinstance(exp, int | float) else None
    return Principal(sub=sub, roles=roles, expires_at=expires_at)


def mint_token(
    settings: Settings, sub: str, roles: list[Role], ttl: timedelta = timedelta(hours=1)
) -> str:
    """A HS256 token for ``sub`` with ``roles``, valid for ``ttl``.

    Raises :class:`TokenLifetimeError` when ``ttl`` exceeds the configured cap: a
    leaked long-lived admin token cannot be revoked short of changing the secret.
    (A negative ``ttl`` makes a token that has already expired, which tests use;
    ``segport token --ttl`` takes only positive durations.)
    """
    longest = timedelta(seconds=settings.token_max_ttl_seconds)
    if ttl > longest:
        raise TokenLifetimeError(
            f"a token may live at most {_days_or_seconds(longest)} "
            f"(SEGPORT_TOKEN_MAX_TTL_SECONDS={settings.token_max_ttl_seconds})"
        )
    now = datetime.now(UTC)
    claims: dict[str, object] = {
        "sub": sub,
        "roles": [r.value for r in roles],
        "iat": now,
        "exp": now + ttl,
    }
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    return jwt.encode(claims, settings.jwt_secret_value(), algorithm="HS256")


def _days_or_seconds(duration: timedelta) -> str:
    seconds = int(duration.total_seconds())
    return f"{seconds // 86400} days" if seconds % 86400 == 0 else f"{seconds} seconds"
