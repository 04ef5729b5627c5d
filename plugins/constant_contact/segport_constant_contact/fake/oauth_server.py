"""The fake's OAuth2 authorization server: single-use codes, both of Constant Contact's
code flows (docs/constant-contact.md, "OAuth2"), rotating (or long-lived) refresh tokens,
JWT access tokens, and the token endpoint's own rate limit.

The server flow authenticates the client with HTTP Basic (client id and secret); the
PKCE flow (public clients) sends ``client_id`` in the form, no secret, and the
``code_verifier`` of the authorization's S256 challenge. Which flows the registered
application may use is the ``oauth_flow`` knob; each request is held to its flow's rules.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

import jwt

from segport_constant_contact.fake.answers import FakeAnswer, escape, oauth_error, with_query
from segport_constant_contact.fake.config import FakeConfig

JWT_SECRET = "segport-fake-constant-contact-signing-key"  # a fake's key: no secret at all
SCOPES = ("contact_data", "offline_access", "account_read", "account_update", "campaign_data")


@dataclass
class AuthorizationCode:
    client_id: str
    redirect_uri: str
    challenge: str | None
    """The PKCE challenge the authorization was asked with; None in the server flow."""
    scope: str
    expires: float


class FakeAuthorizationServer:
    """Issues and checks the tokens of the one client application of ``config``."""

    def __init__(self, config: FakeConfig, lock: threading.RLock, account_id: str) -> None:
        self.config = config
        self.lock = lock
        self.account_id = account_id
        """The ``sub`` of every access token (the account's encoded id)."""
        self.codes: dict[str, AuthorizationCode] = {}
        self.refresh_tokens: dict[str, tuple[str, str]] = {}
        """refresh token -> (client id, scope)."""
        self.access_token_ids: set[str] = set()
        self._token_calls: collections.deque[float] = collections.deque()

    def check_authorize(self, params: dict[str, str]) -> FakeAnswer | None:
        """None when the authorize request is acceptable, else the page refusing it."""
        problem = None
        if params.get("client_id") != self.config.client_id:
            problem = f"unknown client_id {params.get('client_id')!r}"
        elif params.get("redirect_uri") not in self.config.redirect_uris:
            problem = f"redirect_uri {params.get('redirect_uri')!r} is not registered"
        elif params.get("response_type") != "code":
            problem = f"response_type {params.get('response_type')!r} is not supported"
        elif not params.get("code_challenge") and self.config.oauth_flow == "pkce":
            problem = "code_challenge is required (PKCE)"
        elif params.get("code_challenge") and params.get("code_challenge_method") != "S256":
            problem = f"code_challenge_method {params.get('code_challenge_method')!r} is not S256"
        elif not params.get("state"):
            problem = "state is required"
        else:
            unknown = [s for s in params.get("scope", "").split() if s not in SCOPES]
            if unknown or not params.get("scope"):
                problem = f"invalid scope {params.get('scope', '')!r}"
        if problem is None:
            return None
        return FakeAnswer(400, html=f"<h1>Authorization refused</h1><p>{escape(problem)}</p>")

    def approve(self, params: dict[str, str]) -> str:
        """The redirect after the user approved: a fresh single-use code and the state."""
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.codes[code] = AuthorizationCode(
                params["client_id"],
                params["redirect_uri"],
                params.get("code_challenge") or None,
                params["scope"],
                time.monotonic() + self.config.code_ttl_seconds,
            )
        return with_query(params["redirect_uri"], {"code": code, "state": params["state"]})

    def handle_token(self, authorization: str | None, form: dict[str, str]) -> FakeAnswer:
        with self.lock:
            limit = self.config.token_requests_per_second
            now = time.monotonic()
            while self._token_calls and now - self._token_calls[0] >= 1.0:
                self._token_calls.popleft()
            if limit is not None and len(self._token_calls) >= limit:
                return oauth_error(429, "too_many_requests", "Too Many Requests")
            self._token_calls.append(now)
            public = authorization is None
            refusal = self._authenticate(authorization, form)
            if refusal is not None:
                return refusal
            grant = form.get("grant_type")
            if grant == "authorization_code":
                return self._grant_code(form, public)
            if grant == "refresh_token":
                return self._grant_refresh(form)
            return oauth_error(
                400, "unsupported_grant_type", f"grant_type {grant!r} is not supported"
            )

    def _authenticate(self, authorization: str | None, form: dict[str, str]) -> FakeAnswer | None:
        """A refusal unless the client authenticates as its registration allows: HTTP Basic
        with the secret (server flow), or its ``client_id`` alone in the form (PKCE flow)."""
        if authorization is None:
            if self.config.oauth_flow == "server":
                return oauth_error(401, "invalid_client", "client authentication failed")
            if form.get("client_id") != self.config.client_id:
                return oauth_error(401, "invalid_client", "client_id is missing or unknown")
            return None
        if self.config.oauth_flow == "pkce":
            return oauth_error(
                401, "invalid_client", "a public client does not authenticate with a secret"
            )
        if _basic_client(authorization) != (self.config.client_id, self.config.client_secret):
            return oauth_error(401, "invalid_client", "client authentication failed")
        return None

    def _grant_code(self, form: dict[str, str], public: bool) -> FakeAnswer:
        # A code is spent by any attempt to use it, as authorization servers do.
        code = self.codes.pop(form.get("code", ""), None)
        if code is None:
            return oauth_error(
                400, "invalid_grant", "the authorization code is invalid or has been used"
            )
        if time.monotonic() > code.expires:
            return oauth_error(400, "invalid_grant", "the authorization code has expired")
        if form.get("redirect_uri") != code.redirect_uri:
            return oauth_error(
                400, "invalid_grant", "redirect_uri does not match the authorization request"
            )
        verifier = form.get("code_verifier")
        if code.challenge is None:
            if public:
                return oauth_error(
                    400, "invalid_grant", "a code without a PKCE challenge needs the secret"
                )
            if verifier:
                return oauth_error(
                    400, "invalid_request", "code_verifier sent for a code asked without PKCE"
                )
        else:
            if not verifier:
                return oauth_error(400, "invalid_request", "code_verifier is required")
            if _s256(verifier) != code.challenge:
                return oauth_error(400, "invalid_grant", "PKCE verification failed")
        return FakeAnswer(200, self.token_answer(code.client_id, code.scope, None))

    def _grant_refresh(self, form: dict[str, str]) -> FakeAnswer:
        token = form.get("refresh_token", "")
        known = self.refresh_tokens.get(token)
        if known is None or known[0] != self.config.client_id:
            return oauth_error(400, "invalid_grant", "unknown, invalid, or expired refresh token")
        keep = None if self.config.rotating_refresh_tokens else token
        if keep is None:
            del self.refresh_tokens[token]
        return FakeAnswer(200, self.token_answer(known[0], known[1], keep))

    def token_answer(self, client_id: str, scope: str, refresh: str | None) -> dict[str, Any]:
        """A token endpoint answer (call under the lock): a new access token, and a refresh
        token (``refresh`` kept, or a new one) when ``offline_access`` is granted."""
        now = int(time.time())
        ttl = self.config.access_token_ttl_seconds
        jti = secrets.token_hex(8)
        access = jwt.encode(
            {
                "iss": "fake-constant-contact",
                "sub": self.account_id,
                "cid": client_id,
                "scp": scope.split(),
                "iat": now,
                "exp": now + int(ttl),
                "jti": jti,
            },
            JWT_SECRET,
            algorithm="HS256",
        )
        self.access_token_ids.add(jti)
        answer: dict[str, Any] = {
            "token_type": "Bearer",
            "access_token": access,
            "expires_in": int(ttl),
            "scope": scope,
        }
        if "offline_access" in scope.split():
            refresh = refresh or secrets.token_urlsafe(32)
            self.refresh_tokens[refresh] = (client_id, scope)
            answer["refresh_token"] = refresh
        return answer

    def issue_tokens(self, scope: str) -> dict[str, Any]:
        """Tokens as if a user had authorized the app (for tests that skip the browser)."""
        with self.lock:
            return self.token_answer(self.config.client_id, scope, None)

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is refused from now on (401)."""
        with self.lock:
            self.access_token_ids.clear()

    def bearer_scopes(self, authorization: str | None) -> set[str] | None:
        """The scopes of a valid ``Bearer`` access token of this client, else None."""
        if not authorization or not authorization.startswith("Bearer "):
            return None
        try:
            claims = jwt.decode(authorization[7:], JWT_SECRET, algorithms=["HS256"])
        except jwt.PyJWTError:
            return None
        if claims.get("jti") not in self.access_token_ids:
            return None
        if claims.get("cid") != self.config.client_id:
            return None
        return set(claims.get("scp") or [])


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _basic_client(authorization: str | None) -> tuple[str, str] | None:
    if not authorization or not authorization.startswith("Basic "):
        return None
    try:
        decoded = base64.b64decode(authorization[6:], validate=True).decode("utf-8")
    except ValueError:
        return None
    client_id, _, secret = decoded.partition(":")
    return client_id, secret
