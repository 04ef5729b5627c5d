"""What the fake Constant Contact knows and how it answers, independent of HTTP.

:class:`FakeConstantContact` holds the account, lists, contacts, activities, OAuth codes
and tokens, the request log and the knobs. Each ``handle_*`` method takes what a request
carried and returns a :class:`FakeAnswer`; :mod:`.app` is thin starlette glue around it.
The server runs in its own thread, so every change happens under ``self.lock``.
"""

from __future__ import annotations

import base64
import collections
import datetime as dt
import hashlib
import html
import random
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import jwt
import orjson

from segport_constant_contact.fake.config import FakeConfig

JWT_SECRET = "segport-fake-constant-contact-signing-key"  # a fake's key: no secret at all
SCOPES = ("contact_data", "offline_access", "account_read", "account_update", "campaign_data")
MAX_LIST_IDS = 50
MAX_MEMBERSHIP_CONTACTS = 500
MAX_CUSTOM_FIELDS = 25
KEPT_ACTIVITY_ERRORS = 1000
# Good enough for a fake: something@something.tld without spaces.
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
THROTTLED = {"error_key": "throttled", "error_message": "Too Many Requests"}
QUOTA_EXCEEDED = {"error_key": "quota_exceeded", "error_message": "Limit Exceeded"}
QUEUED_ACTIVITIES = {
    "error_key": "too_many_requests",
    "error_message": "You exceeded 1,000 queued activities for this user account",
}


@dataclass
class FakeAnswer:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    html: str | None = None


def _errors(status: int, key: str, message: str) -> FakeAnswer:
    """Constant Contact's usual error body: an array of error objects."""
    return FakeAnswer(status, [{"error_key": key, "error_message": message}])


def _oauth_error(status: int, error: str, description: str) -> FakeAnswer:
    return FakeAnswer(status, {"error": error, "error_description": description})


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    method: str
    path: str
    arrived: float
    """``time.monotonic()`` at arrival."""
    body_bytes: int
    record_count: int | None
    status: int


@dataclass
class FakeList:
    list_id: str
    name: str
    description: str = ""
    created_at: str = field(default_factory=lambda: _iso(_now()))
    members: set[str] = field(default_factory=set)
    """Lower-cased e-mails."""

    def as_json(self, with_count: bool) -> dict[str, Any]:
        data: dict[str, Any] = {
            "list_id": self.list_id,
            "name": self.name,
            "description": self.description,
            "favorite": False,
            "created_at": self.created_at,
            "updated_at": self.created_at,
        }
        if with_count:
            data["membership_count"] = len(self.members)
        return data


@dataclass
class FakeContact:
    contact_id: str
    email: str
    fields: dict[str, Any]
    list_ids: set[str] = field(default_factory=set)
    unsubscribed: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "contact_id": self.contact_id,
            "email_address": {
                "address": self.email,
                "permission_to_send": "unsubscribed" if self.unsubscribed else "implicit",
            },
            **{k: v for k, v in self.fields.items() if k != "email"},
            "list_memberships": sorted(self.list_ids),
        }


@dataclass
class FakeActivity:
    activity_id: str
    items: int
    person_count: int = 0
    error_count: int = 0
    correctable_count: int = 0
    cannot_add_to_list_count: int = 0
    errors: list[str] = field(default_factory=list)
    polls: int = 0
    fails: bool = False
    created_at: str = field(default_factory=lambda: _iso(_now()))
    completed_at: str | None = None

    def state(self, polls_to_complete: int) -> str:
        if self.polls >= polls_to_complete:
            return "failed" if self.fails else "completed"
        return "processing" if self.polls > 0 else "initialized"

    def as_json(self, polls_to_complete: int) -> dict[str, Any]:
        state = self.state(polls_to_complete)
        done = state in ("completed", "failed")
        if done and self.completed_at is None:
            self.completed_at = _iso(_now())
        return {
            "activity_id": self.activity_id,
            "state": state,
            "percent_done": 100 if done else (50 if state == "processing" else 0),
            "activity_errors": list(self.errors) if done else [],
            "status": {
                "items_total_count": self.items,
                "items_completed_count": self.items if done else 0,
                "person_count": self.person_count if done else 0,
                "error_count": self.error_count if done else 0,
                "correctable_count": self.correctable_count if done else 0,
                "cannot_add_to_list_count": self.cannot_add_to_list_count if done else 0,
            },
            "started_at": self.created_at,
            "completed_at": self.completed_at,
            "created_at": self.created_at,
            "updated_at": self.completed_at or self.created_at,
            "_links": {"self": {"href": f"/v3/activities/{self.activity_id}"}},
        }


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str
    scope: str
    expires: float


class FakeConstantContact:
    """The whole fake: one Constant Contact user account behind one client application."""

    def __init__(self, config: FakeConfig | None = None, **knobs: Any) -> None:
        self.config = config or FakeConfig()
        self.config.update(knobs)
        self.lock = threading.RLock()
        self.rng = random.Random(self.config.seed)
        self.account = {
            "organization_name": "Fake Outfitters",
            "contact_email": "owner@fake-outfitters.example",
            "encoded_account_id": "fake0account",
            "first_name": "Fay",
            "last_name": "Kerr",
        }
        self.lists: dict[str, FakeList] = {}
        self.contacts: dict[str, FakeContact] = {}
        self.activities: dict[str, FakeActivity] = {}
        self.codes: dict[str, _Code] = {}
        self.refresh_tokens: dict[str, tuple[str, str]] = {}
        """refresh token -> (client id, scope)."""
        self.access_token_ids: set[str] = set()
        self.request_log: list[LoggedRequest] = []
        self.truncated_imports = 0
        """Imports whose body passed ``max_body_bytes`` (their excess contacts were lost)."""
        self.dropped_contacts = 0
        self._admitted: collections.deque[float] = collections.deque()
        self._token_calls: collections.deque[float] = collections.deque()
        self._day: dt.date = _now().date()
        self._day_count = 0
        self.add_list("General Interest", "07936f78-662a-11eb-af0a-fa163e56c9b0")
        self.add_list("Newsletter", "8a2b3c4d-0000-4000-8000-00000000a001")

    # -- administration (tests, the admin endpoint) ---------------------------------
    def configure(self, **knobs: Any) -> None:
        with self.lock:
            self.config.update(knobs)
            if "seed" in knobs:
                self.rng.seed(self.config.seed)

    def add_list(self, name: str, list_id: str | None = None, description: str = "") -> str:
        with self.lock:
            list_id = list_id or str(uuid.uuid4())
            self.lists[list_id] = FakeList(list_id, name, description)
            return list_id

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is refused from now on (401)."""
        with self.lock:
            self.access_token_ids.clear()

    def issue_tokens(
        self, scope: str = "contact_data offline_access account_read"
    ) -> dict[str, Any]:
        """Tokens as if a user had authorized the app (for tests that skip the browser)."""
        with self.lock:
            return self._token_answer(self.config.client_id, scope, None)

    def list_members(self, list_id: str) -> set[str]:
        with self.lock:
            return set(self.lists[list_id].members)

    def max_requests_in_window(self, seconds: float = 1.0, path_prefix: str = "/v3/") -> int:
        """Most API requests that arrived within any window of ``seconds``."""
        with self.lock:
            times = sorted(r.arrived for r in self.request_log if r.path.startswith(path_prefix))
        most, start = 0, 0
        for end, moment in enumerate(times):
            while moment - times[start] >= seconds:
                start += 1
            most = max(most, end - start + 1)
        return most

    def largest_body(self) -> int:
        with self.lock:
            return max((r.body_bytes for r in self.request_log), default=0)

    def most_records(self) -> int:
        with self.lock:
            return max((r.record_count or 0 for r in self.request_log), default=0)

    def log(self, method: str, path: str, arrived: float, size: int, records: int | None,
            status: int) -> None:  # fmt: skip
        with self.lock:
            self.request_log.append(LoggedRequest(method, path, arrived, size, records, status))

    def stats(self) -> dict[str, Any]:
        with self.lock:
            statuses = collections.Counter(r.status for r in self.request_log)
            return {
                "requests": len(self.request_log),
                "statuses": {str(k): v for k, v in sorted(statuses.items())},
                "max_requests_in_one_second": self.max_requests_in_window(1.0),
                "largest_body_bytes": self.largest_body(),
                "most_records": self.most_records(),
                "truncated_imports": self.truncated_imports,
                "dropped_contacts": self.dropped_contacts,
                "contacts": len(self.contacts),
                "lists": {
                    lid: {"name": fl.name, "members": len(fl.members)}
                    for lid, fl in self.lists.items()
                },
                "activities": len(self.activities),
            }

    # -- OAuth -------------------------------------------------------------------------
    def check_authorize(self, params: dict[str, str]) -> FakeAnswer | None:
        """None when the authorize request is acceptable, else the page refusing it."""
        problem = None
        if params.get("client_id") != self.config.client_id:
            problem = f"unknown client_id {params.get('client_id')!r}"
        elif params.get("redirect_uri") not in self.config.redirect_uris:
            problem = f"redirect_uri {params.get('redirect_uri')!r} is not registered"
        elif params.get("response_type") != "code":
            problem = f"response_type {params.get('response_type')!r} is not supported"
        elif not params.get("code_challenge"):
            problem = "code_challenge is required (PKCE)"
        elif params.get("code_challenge_method") != "S256":
            problem = f"code_challenge_method {params.get('code_challenge_method')!r} is not S256"
        elif not params.get("state"):
            problem = "state is required"
        else:
            unknown = [s for s in params.get("scope", "").split() if s not in SCOPES]
            if unknown or not params.get("scope"):
                problem = f"invalid scope {params.get('scope', '')!r}"
        if problem is None:
            return None
        return FakeAnswer(400, html=f"<h1>Authorization refused</h1><p>{_escape(problem)}</p>")

    def approve(self, params: dict[str, str]) -> str:
        """The redirect after the user approved: a fresh single-use code and the state."""
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.codes[code] = _Code(
                params["client_id"],
                params["redirect_uri"],
                params["code_challenge"],
                params["scope"],
                time.monotonic() + self.config.code_ttl_seconds,
            )
        return _with_query(params["redirect_uri"], {"code": code, "state": params["state"]})

    def handle_token(self, authorization: str | None, form: dict[str, str]) -> FakeAnswer:
        with self.lock:
            limit = self.config.token_requests_per_second
            now = time.monotonic()
            while self._token_calls and now - self._token_calls[0] >= 1.0:
                self._token_calls.popleft()
            if limit is not None and len(self._token_calls) >= limit:
                return _oauth_error(429, "too_many_requests", "Too Many Requests")
            self._token_calls.append(now)
            client_id = _basic_client(authorization)
            if client_id != (self.config.client_id, self.config.client_secret):
                return _oauth_error(401, "invalid_client", "client authentication failed")
            grant = form.get("grant_type")
            if grant == "authorization_code":
                return self._grant_code(form)
            if grant == "refresh_token":
                return self._grant_refresh(form)
            return _oauth_error(
                400, "unsupported_grant_type", f"grant_type {grant!r} is not supported"
            )

    def _grant_code(self, form: dict[str, str]) -> FakeAnswer:
        # A code is spent by any attempt to use it, as authorization servers do.
        code = self.codes.pop(form.get("code", ""), None)
        if code is None:
            return _oauth_error(
                400, "invalid_grant", "the authorization code is invalid or has been used"
            )
        if time.monotonic() > code.expires:
            return _oauth_error(400, "invalid_grant", "the authorization code has expired")
        if form.get("redirect_uri") != code.redirect_uri:
            return _oauth_error(
                400, "invalid_grant", "redirect_uri does not match the authorization request"
            )
        verifier = form.get("code_verifier")
        if not verifier:
            return _oauth_error(400, "invalid_request", "code_verifier is required")
        if _s256(verifier) != code.challenge:
            return _oauth_error(400, "invalid_grant", "PKCE verification failed")
        return FakeAnswer(200, self._token_answer(code.client_id, code.scope, None))

    def _grant_refresh(self, form: dict[str, str]) -> FakeAnswer:
        token = form.get("refresh_token", "")
        known = self.refresh_tokens.get(token)
        if known is None or known[0] != self.config.client_id:
            return _oauth_error(400, "invalid_grant", "unknown, invalid, or expired refresh token")
        keep = None if self.config.rotating_refresh_tokens else token
        if keep is None:
            del self.refresh_tokens[token]
        return FakeAnswer(200, self._token_answer(known[0], known[1], keep))

    def _token_answer(self, client_id: str, scope: str, refresh: str | None) -> dict[str, Any]:
        now = int(time.time())
        ttl = self.config.access_token_ttl_seconds
        jti = secrets.token_hex(8)
        access = jwt.encode(
            {
                "iss": "fake-constant-contact",
                "sub": self.account["encoded_account_id"],
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

    # -- the API's gate: token, rate limits, injected faults --------------------------------
    def gate(self, authorization: str | None, arrived: float) -> tuple[FakeAnswer | None, set[str]]:
        """Check a request to /v3 that arrived at ``arrived`` (``time.monotonic()``): an error
        answer, or None and the token's scopes.

        The per-second window counts the requests it admitted, so a client that keeps
        knocking while throttled is not throttled forever."""
        with self.lock:
            scopes = self._bearer_scopes(authorization)
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
            today = _now().date()
            if today != self._day:
                self._day, self._day_count = today, 0
            if self._day_count >= self.config.requests_per_day:
                return FakeAnswer(429, dict(QUOTA_EXCEEDED)), scopes
            self._day_count += 1
            if self.rng.random() < self.config.throttle_share:
                return FakeAnswer(429, dict(THROTTLED)), scopes
            if self.rng.random() < self.config.server_error_share:
                return _errors(503, "server_error", "Service Unavailable"), scopes
            return None, scopes

    def slow_delay(self) -> float:
        with self.lock:
            if self.config.slow_share and self.rng.random() < self.config.slow_share:
                return self.config.slow_seconds
            return 0.0

    def _bearer_scopes(self, authorization: str | None) -> set[str] | None:
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

    # -- the API --------------------------------------------------------------------------
    def handle_account_summary(self, scopes: set[str]) -> FakeAnswer:
        if "account_read" not in scopes:
            return _errors(403, "unauthorized", "The account_read scope is required")
        return FakeAnswer(200, dict(self.account))

    def handle_contact_lists(self, params: dict[str, str]) -> FakeAnswer:
        try:
            limit = int(params.get("limit", "50"))
            offset = int(params.get("cursor", "0"))
        except ValueError:
            return _errors(400, "contacts.api.bad.request", "limit and cursor must be numbers")
        if not 1 <= limit <= 1000:
            return _errors(400, "contacts.api.bad.request", f"limit {limit} is not 1 to 1000")
        with_count = params.get("include_membership_count") in ("all", "active")
        with self.lock:
            every = list(self.lists.values())
            name = params.get("name")
            if name:
                every = [fl for fl in every if fl.name == name]
            page = [fl.as_json(with_count) for fl in every[offset : offset + limit]]
        body: dict[str, Any] = {"lists": page, "lists_count": len(every), "_links": {}}
        if offset + limit < len(every):
            query = {"limit": str(limit), "cursor": str(offset + limit)}
            if with_count:
                query["include_membership_count"] = params["include_membership_count"]
            body["_links"]["next"] = {"href": _with_query("/v3/contact_lists", query)}
        return FakeAnswer(200, body)

    def _check_list_ids(self, list_ids: Any) -> FakeAnswer | None:
        if not isinstance(list_ids, list) or not list_ids:
            return _errors(400, "contacts.api.validation.error", "list_ids is required")
        if len(list_ids) > MAX_LIST_IDS:
            return _errors(
                400,
                "contacts.api.validation.error",
                f"list_ids holds {len(list_ids)} lists; at most {MAX_LIST_IDS} are allowed",
            )
        for list_id in list_ids:
            if not isinstance(list_id, str) or list_id not in self.lists:
                return _errors(
                    400, "contacts.api.validation.error", f"list_ids: {list_id!r} is not a list"
                )
        return None

    def handle_json_import(self, content_type: str | None, raw: bytes) -> tuple[FakeAnswer, int]:
        """The answer and how many contacts it carried (for the request log)."""
        if not (content_type or "").startswith("application/json"):
            return _errors(
                415, "contacts.api.unsupported.media.type", "Content-Type must be application/json"
            ), 0
        truncated = len(raw) > self.config.max_body_bytes
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return _errors(400, "contacts.api.bad.request", f"malformed JSON: {exc}"), 0
        if not isinstance(body, dict) or not isinstance(body.get("import_data"), list):
            return _errors(400, "contacts.api.validation.error", "import_data is required"), 0
        contacts: list[Any] = body["import_data"]
        sent = len(contacts)
        with self.lock:
            if truncated:
                contacts = self._keep_first_bytes(contacts)
                self.truncated_imports += 1
                self.dropped_contacts += sent - len(contacts)
            problem = self._check_list_ids(body.get("list_ids"))
            if problem:
                return problem, sent
            if len(contacts) > self.config.max_contacts:
                return _errors(
                    400,
                    "contacts.api.validation.error",
                    f"import_data holds {len(contacts)} contacts; "
                    f"at most {self.config.max_contacts} are allowed",
                ), sent
            if not contacts:
                return _errors(400, "contacts.api.validation.error", "import_data is empty"), 0
            if self.config.queued_activities_429s > 0:
                self.config.queued_activities_429s -= 1
                return FakeAnswer(429, dict(QUEUED_ACTIVITIES)), sent
            activity = self._import(contacts, body["list_ids"])
            return FakeAnswer(201, activity.as_json(self.config.polls_to_complete)), sent

    def _keep_first_bytes(self, contacts: list[Any]) -> list[Any]:
        position = len(b'{"import_data":[')
        for index, contact in enumerate(contacts):
            position += len(orjson.dumps(contact)) + 1
            if position > self.config.max_body_bytes:
                return contacts[:index]
        return contacts

    def _import(self, contacts: list[Any], list_ids: list[str]) -> FakeActivity:
        activity = FakeActivity(str(uuid.uuid4()), items=len(contacts))
        if self.config.failing_activities > 0:
            self.config.failing_activities -= 1
            activity.fails = True
        unsubscribed = self.config.unsubscribed
        for row, contact in enumerate(contacts, start=1):
            problem, correctable = _contact_problem(contact)
            if problem is not None:
                if correctable:
                    activity.correctable_count += 1
                else:
                    activity.error_count += 1
                if len(activity.errors) < KEPT_ACTIVITY_ERRORS:
                    activity.errors.append(f"Row {row}: {problem}")
                continue
            email = str(contact["email"])
            key = email.lower()
            stored = self.contacts.get(key)
            if stored is None:
                stored = FakeContact(str(uuid.uuid4()), email, {})
                self.contacts[key] = stored
            # Partial update: only the fields sent change.
            stored.fields.update({k: v for k, v in contact.items() if k != "email"})
            activity.person_count += 1
            if key in unsubscribed:
                stored.unsubscribed = True
                activity.cannot_add_to_list_count += 1
                continue
            for list_id in list_ids:
                stored.list_ids.add(list_id)
                self.lists[list_id].members.add(key)
        self.activities[activity.activity_id] = activity
        return activity

    def handle_memberships(self, raw: bytes, add: bool) -> FakeAnswer:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return _errors(400, "contacts.api.bad.request", f"malformed JSON: {exc}")
        source = body.get("source") if isinstance(body, dict) else None
        ids = source.get("contact_ids") if isinstance(source, dict) else None
        if not isinstance(ids, list) or not 1 <= len(ids) <= MAX_MEMBERSHIP_CONTACTS:
            return _errors(
                400,
                "contacts.api.validation.error",
                f"source.contact_ids must hold 1 to {MAX_MEMBERSHIP_CONTACTS} contact ids",
            )
        with self.lock:
            problem = self._check_list_ids(body.get("list_ids"))
            if problem:
                return problem
            if self.config.queued_activities_429s > 0:
                self.config.queued_activities_429s -= 1
                return FakeAnswer(429, dict(QUEUED_ACTIVITIES))
            by_id = {c.contact_id: (key, c) for key, c in self.contacts.items()}
            activity = FakeActivity(str(uuid.uuid4()), items=len(ids))
            for contact_id in ids:
                found = by_id.get(contact_id)
                if found is None:
                    activity.error_count += 1
                    activity.errors.append(f"contact {contact_id!r} does not exist")
                    continue
                key, contact = found
                activity.person_count += 1
                for list_id in body["list_ids"]:
                    if add and contact.unsubscribed:
                        activity.cannot_add_to_list_count += 1
                        break
                    if add:
                        contact.list_ids.add(list_id)
                        self.lists[list_id].members.add(key)
                    else:
                        contact.list_ids.discard(list_id)
                        self.lists[list_id].members.discard(key)
            self.activities[activity.activity_id] = activity
            return FakeAnswer(201, activity.as_json(self.config.polls_to_complete))

    def handle_activity(self, activity_id: str) -> FakeAnswer:
        with self.lock:
            activity = self.activities.get(activity_id)
            if activity is None:
                return _errors(
                    404, "contacts.api.not_found", f"activity {activity_id!r} was not found"
                )
            activity.polls += 1
            return FakeAnswer(200, activity.as_json(self.config.polls_to_complete))

    def handle_contacts(self, params: dict[str, str]) -> FakeAnswer:
        email = params.get("email")
        with self.lock:
            if email:
                found = self.contacts.get(email.lower())
                chosen = [found] if found else []
            else:
                chosen = list(self.contacts.values())[: int(params.get("limit", "50"))]
            return FakeAnswer(
                200,
                {"contacts": [c.as_json() for c in chosen], "contacts_count": len(chosen)},
            )


def _contact_problem(contact: Any) -> tuple[str | None, bool]:
    """What Constant Contact would refuse in one contact, and whether it counts as
    correctable (bad e-mail or date formats) rather than an error."""
    if not isinstance(contact, dict):
        return "not a contact object", False
    email = contact.get("email")
    if not email:
        return "email is required", False
    if not isinstance(email, str) or len(email) > 50 or not EMAIL_RE.match(email):
        return f"invalid email address {email!r}", True
    anniversary = contact.get("anniversary")
    if anniversary is not None and not (
        isinstance(anniversary, str) and DATE_RE.match(anniversary)
    ):
        return f"invalid anniversary date {anniversary!r}", True
    month, day = contact.get("birthday_month"), contact.get("birthday_day")
    if (month is None) != (day is None):
        return "birthday_month and birthday_day must be given together", True
    if month is not None and not (
        isinstance(month, int) and isinstance(day, int) and 1 <= month <= 12 and 1 <= day <= 31
    ):
        return f"invalid birthday {month!r}/{day!r}", True
    custom = [k for k in contact if k.startswith("cf:")]
    if len(custom) > MAX_CUSTOM_FIELDS:
        return f"{len(custom)} custom fields; at most {MAX_CUSTOM_FIELDS} allowed", False
    return None, False


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


def _with_query(url: str, query: dict[str, str]) -> str:
    return f"{url}{'&' if '?' in url else '?'}{urlencode(query)}"


def _escape(text: str) -> str:
    return html.escape(text)
