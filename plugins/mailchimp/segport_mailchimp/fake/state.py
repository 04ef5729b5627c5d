"""The fake Mailchimp's state and its answers to each API call.

Handlers return a :class:`FakeAnswer`; :mod:`.app` turns them into HTTP responses.
Errors are problem documents, as Mailchimp's are. The concurrency cap is counted
per API key by :meth:`FakeMailchimp.enter` and :meth:`FakeMailchimp.leave`, which
the app calls around every API request.
"""

from __future__ import annotations

import base64
import binascii
import io
import random
import tarfile
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from segport_mailchimp.fake.config import FakeConfig
from segport_mailchimp.fake.records import (
    COMPLIANCE_STATUSES,
    NEW_MEMBER_STATUSES,
    FakeAccount,
    FakeAudience,
    FakeMember,
    FakeMergeField,
    is_email,
    now_text,
    subscriber_hash,
)

PROBLEM_TYPE = "https://mailchimp.com/developer/marketing/docs/errors/"
DEMO_API_KEY = "5ca1ab1e" * 4 + "-us6"
"""The key of the fake's first account (data center ``us6``)."""
NEWSLETTER_LIST_ID = "a1b2c3d4e5"
CUSTOMERS_LIST_ID = "f6e5d4c3b2"
MAX_PAGE = 1000


@dataclass
class FakeAnswer:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    """A non-JSON body (the gzipped tar of a batch's results)."""


def problem(
    status: int, title: str, detail: str, errors: list[dict[str, str]] | None = None
) -> FakeAnswer:
    """A problem document, as every Mailchimp error is."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": str(uuid.uuid4()),
    }
    if errors is not None:
        body["errors"] = errors
    return FakeAnswer(status, body, {"content-type": "application/problem+json"})


def invalid_key() -> FakeAnswer:
    return problem(
        401,
        "API Key Invalid",
        "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
    )


def not_found() -> FakeAnswer:
    return problem(404, "Resource Not Found", "The requested resource could not be found.")


def _page(query: Mapping[str, str]) -> tuple[int, int] | FakeAnswer:
    try:
        count = int(query.get("count", "10"))
        offset = int(query.get("offset", "0"))
    except ValueError:
        return problem(400, "Invalid Resource", "count and offset must be integers")
    if not 1 <= count <= MAX_PAGE or offset < 0:
        return problem(
            400, "Invalid Resource", f"count must be between 1 and {MAX_PAGE}, offset at least 0"
        )
    return count, offset


@dataclass
class LoggedRequest:
    method: str
    path: str
    status: int
    api_key: str | None
    members: int | None = None


class FakeMailchimp:
    """Accounts by API key, each with its audiences; the request log; the knobs."""

    def __init__(self, **knobs: Any) -> None:
        self.config = FakeConfig()
        self.config.update(knobs)
        self._lock = threading.RLock()
        self._dice = random.Random(self.config.seed)
        self.accounts: dict[str, FakeAccount] = {}
        self.requests: list[LoggedRequest] = []
        self.in_flight: dict[str, int] = {}
        self.peak_in_flight: dict[str, int] = {}
        """The most requests ever in flight at once, per API key."""
        self.over_cap_refusals = 0
        """Requests answered 429 because too many were in flight for their key."""
        self.batches: dict[str, dict[str, Any]] = {}
        self.codes: dict[str, tuple[str, str]] = {}
        """OAuth2 codes not yet exchanged: code to (account key, redirect URI)."""
        self.tokens: dict[str, str] = {}
        """OAuth2 access tokens (they never expire) to their account's key."""
        self._results: dict[str, bytes] = {}
        account = self.add_account(DEMO_API_KEY, account_name="Fake Mailchimp Co.")
        account.audiences[NEWSLETTER_LIST_ID] = FakeAudience(NEWSLETTER_LIST_ID, "Newsletter")
        customers = FakeAudience(CUSTOMERS_LIST_ID, "Customers")
        customers.merge_fields += [
            FakeMergeField(6, "CITY", "City", required=True),
            FakeMergeField(7, "POINTS", "Loyalty points", "number"),
            FakeMergeField(8, "JOINED", "Joined", "date", options={"date_format": "DD/MM/YYYY"}),
        ]
        account.audiences[CUSTOMERS_LIST_ID] = customers

    # -- set-up for tests and demos ------------------------------------------------------
    def configure(self, **knobs: Any) -> None:
        with self._lock:
            self.config.update(knobs)
            if "seed" in knobs:
                self._dice = random.Random(self.config.seed)

    def add_account(
        self, api_key: str | None = None, *, dc: str = "us6", account_name: str = "Another Co."
    ) -> FakeAccount:
        """A new account (a fresh key in ``dc`` unless ``api_key`` is given)."""
        key = api_key or f"{uuid.uuid4().hex}-{dc}"
        account = FakeAccount(
            api_key=key,
            dc=key.rsplit("-", 1)[-1],
            account_id=uuid.uuid4().hex[:10],
            account_name=account_name,
            email=f"owner@{account_name.split()[0].lower()}.example",
        )
        with self._lock:
            self.accounts[key] = account
        return account

    def add_audience(self, name: str, api_key: str = DEMO_API_KEY) -> FakeAudience:
        audience = FakeAudience(uuid.uuid4().hex[:10], name)
        with self._lock:
            self.accounts[api_key].audiences[audience.id] = audience
        return audience

    def audience(self, list_id: str, api_key: str = DEMO_API_KEY) -> FakeAudience:
        return self.accounts[api_key].audiences[list_id]

    def set_member(
        self, list_id: str, email: str, status: str, api_key: str = DEMO_API_KEY, **merge: Any
    ) -> FakeMember:
        """Put a member in an audience directly (e.g. one who unsubscribed long ago)."""
        member = FakeMember(email, status, dict(merge))
        with self._lock:
            self.audience(list_id, api_key).members[member.id] = member
        return member

    def forget(self, list_id: str, email: str, api_key: str = DEMO_API_KEY) -> None:
        """Delete a member permanently: it can never be imported again."""
        with self._lock:
            audience = self.audience(list_id, api_key)
            member = audience.members.get(subscriber_hash(email)) or FakeMember(email, "archived")
            member.forgotten = True
            audience.members[member.id] = member

    def rotate_key(self, api_key: str = DEMO_API_KEY) -> str:
        """A new key for the account (same data center, same audiences); the old one is
        revoked, as when a user generates a key and deletes the previous one."""
        with self._lock:
            account = self.accounts[api_key]
            fresh = f"{uuid.uuid4().hex}-{account.dc}"
            moved = FakeAccount(
                api_key=fresh,
                dc=account.dc,
                account_id=account.account_id,
                account_name=account.account_name,
                email=account.email,
                audiences=account.audiences,
            )
            self.accounts[fresh] = moved
            account.revoked = True
            return fresh

    def revoke(self, api_key: str = DEMO_API_KEY) -> None:
        with self._lock:
            self.accounts[api_key].revoked = True

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": len(self.requests),
                "peak_in_flight": dict(self.peak_in_flight),
                "over_cap_refusals": self.over_cap_refusals,
                "members": {
                    list_id: len(audience.active())
                    for account in self.accounts.values()
                    for list_id, audience in account.audiences.items()
                },
            }

    # -- the gate every API request passes ------------------------------------------------
    def authenticate(self, authorization: str | None, dc: str) -> FakeAccount | FakeAnswer:
        """The account of an HTTP Basic key (any user name) or an OAuth2 token (``OAuth`` or
        ``Bearer``), in the data center of the path."""
        scheme, _, credential = (authorization or "").partition(" ")
        if scheme in ("OAuth", "Bearer"):
            token_account = self.accounts.get(self.tokens.get(credential, ""))
            if token_account is None or token_account.revoked or token_account.dc != dc:
                return invalid_key()
            return token_account
        if not authorization or not authorization.startswith("Basic "):
            return invalid_key()
        try:
            decoded = base64.b64decode(authorization[6:], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return invalid_key()
        _, _, key = decoded.partition(":")
        account = self.accounts.get(key)
        if account is None or account.revoked or account.dc != dc:
            return invalid_key()
        return account

    def enter(self, account: FakeAccount) -> FakeAnswer | None:
        """Count one more request in flight for the key, or refuse it (429) past the cap;
        then the fault dice."""
        with self._lock:
            key = account.api_key
            held = self.in_flight.get(key, 0)
            if held >= self.config.max_connections:
                self.over_cap_refusals += 1
                return problem(
                    429,
                    "Too Many Requests",
                    f"You have more than {self.config.max_connections} simultaneous "
                    "connections. Please reduce your concurrency.",
                )
            self.in_flight[key] = held + 1
            self.peak_in_flight[key] = max(self.peak_in_flight.get(key, 0), held + 1)
            fault = self._fault()
            if fault is not None:
                self.in_flight[key] -= 1
            return fault

    def leave(self, account: FakeAccount) -> None:
        with self._lock:
            self.in_flight[account.api_key] -= 1

    def _fault(self) -> FakeAnswer | None:
        config = self.config
        if config.server_errors_next > 0:
            config.server_errors_next -= 1
            return problem(500, "Internal Server Error", "An unexpected error occurred.")
        if config.throttle_share and self._dice.random() < config.throttle_share:
            return problem(429, "Too Many Requests", "You have exceeded the limit of requests.")
        if config.server_error_share and self._dice.random() < config.server_error_share:
            return problem(503, "Service Unavailable", "The service is temporarily unavailable.")
        return None

    def extra_delay(self) -> float:
        config = self.config
        delay = config.latency_seconds
        if config.slow_share:
            with self._lock:
                if self._dice.random() < config.slow_share:
                    delay += config.slow_seconds
        return delay

    def log(self, request: LoggedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    # -- OAuth2 (login.mailchimp.com) ------------------------------------------------------
    def authorize(self, params: Mapping[str, str], api_key: str = DEMO_API_KEY) -> FakeAnswer:
        """Approve at once for the first account: a redirect with a single-use code."""
        if (
            params.get("response_type") != "code"
            or params.get("client_id") != self.config.client_id
        ):
            return FakeAnswer(400, {"error": "invalid_client", "error_description": "unknown app"})
        redirect = params.get("redirect_uri", "")
        if not redirect.startswith(("http://", "https://")):
            return FakeAnswer(
                400, {"error": "invalid_request", "error_description": "redirect_uri"}
            )
        code = uuid.uuid4().hex
        with self._lock:
            self.codes[code] = (api_key, redirect)
        sep = "&" if "?" in redirect else "?"
        state = params.get("state", "")
        return FakeAnswer(302, headers={"location": f"{redirect}{sep}code={code}&state={state}"})

    def token(self, form: Mapping[str, str]) -> FakeAnswer:
        config = self.config
        if form.get("client_id") != config.client_id or form.get("client_secret") != (
            config.client_secret
        ):
            return FakeAnswer(401, {"error": "invalid_client", "error_description": "bad client"})
        with self._lock:
            found = self.codes.pop(form.get("code", ""), None)
        if form.get("grant_type") != "authorization_code" or found is None:
            return FakeAnswer(400, {"error": "invalid_grant", "error_description": "bad code"})
        api_key, redirect = found
        if form.get("redirect_uri") != redirect:
            return FakeAnswer(400, {"error": "invalid_grant", "error_description": "redirect_uri"})
        token = uuid.uuid4().hex
        with self._lock:
            self.tokens[token] = api_key
        return FakeAnswer(200, {"access_token": token, "expires_in": 0, "scope": None})

    def metadata(self, authorization: str | None, base_url: str) -> FakeAnswer:
        scheme, _, token = (authorization or "").partition(" ")
        account = self.accounts.get(self.tokens.get(token, "")) if scheme == "OAuth" else None
        if account is None or account.revoked:
            return FakeAnswer(401, {"error": "invalid_token", "error_description": "bad token"})
        return FakeAnswer(
            200,
            {
                "dc": account.dc,
                "api_endpoint": f"{base_url}/{account.dc}",
                "accountname": account.account_name,
                "login": {"login_id": account.account_id, "email": account.email},
            },
        )

    # -- the calls ----------------------------------------------------------------------
    def ping(self) -> FakeAnswer:
        return FakeAnswer(200, {"health_status": "Everything's Chimpy!"})

    def root(self, account: FakeAccount) -> FakeAnswer:
        return FakeAnswer(200, account.as_json())

    def lists(self, account: FakeAccount, query: Mapping[str, str]) -> FakeAnswer:
        paging = _page(query)
        if isinstance(paging, FakeAnswer):
            return paging
        count, offset = paging
        with self._lock:
            audiences = list(account.audiences.values())
            return FakeAnswer(
                200,
                {
                    "lists": [a.as_json() for a in audiences[offset : offset + count]],
                    "total_items": len(audiences),
                },
            )

    def merge_fields(
        self, account: FakeAccount, list_id: str, query: Mapping[str, str]
    ) -> FakeAnswer:
        audience = account.audiences.get(list_id)
        if audience is None:
            return not_found()
        paging = _page(query)
        if isinstance(paging, FakeAnswer):
            return paging
        count, offset = paging
        # The e-mail address is not a merge field: the audience's fields after it.
        shown = audience.merge_fields[offset : offset + count]
        return FakeAnswer(
            200,
            {
                "merge_fields": [f.as_json(list_id) for f in shown],
                "total_items": len(audience.merge_fields),
                "list_id": list_id,
            },
        )

    def members(self, account: FakeAccount, list_id: str, query: Mapping[str, str]) -> FakeAnswer:
        audience = account.audiences.get(list_id)
        if audience is None:
            return not_found()
        paging = _page(query)
        if isinstance(paging, FakeAnswer):
            return paging
        count, offset = paging
        status = query.get("status")
        with self._lock:
            chosen = [
                m
                for m in audience.members.values()
                if not m.forgotten and (status is None or m.status == status)
            ]
            return FakeAnswer(
                200,
                {
                    "members": [m.as_json(list_id) for m in chosen[offset : offset + count]],
                    "total_items": len(chosen),
                    "list_id": list_id,
                },
            )

    def member(self, account: FakeAccount, list_id: str, member_hash: str) -> FakeAnswer:
        audience = account.audiences.get(list_id)
        member = audience.members.get(member_hash) if audience else None
        if audience is None or member is None or member.forgotten:
            return not_found()
        return FakeAnswer(200, member.as_json(list_id))

    def archive(self, account: FakeAccount, list_id: str, member_hash: str) -> FakeAnswer:
        """``DELETE .../members/{hash}``: the member leaves the active contacts (204)."""
        with self._lock:
            audience = account.audiences.get(list_id)
            member = audience.members.get(member_hash) if audience else None
            if member is None or member.forgotten:
                return not_found()
            member.status = "archived"
            member.last_changed = now_text()
            return FakeAnswer(204)

    def delete_permanent(self, account: FakeAccount, list_id: str, member_hash: str) -> FakeAnswer:
        with self._lock:
            audience = account.audiences.get(list_id)
            member = audience.members.get(member_hash) if audience else None
            if member is None or member.forgotten:
                return not_found()
            member.forgotten = True
            return FakeAnswer(204)

    def put_member(
        self, account: FakeAccount, list_id: str, member_hash: str, raw: bytes
    ) -> FakeAnswer:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return problem(400, "Invalid Resource", "The request body is not valid JSON.")
        if not isinstance(body, dict) or not isinstance(body.get("email_address"), str):
            return problem(400, "Invalid Resource", "email_address is required")
        if subscriber_hash(body["email_address"]) != member_hash:
            return problem(400, "Invalid Resource", "The subscriber hash does not match.")
        answer = self.batch_subscribe(account, list_id, orjson.dumps({"members": [body],
                                      "update_existing": True}), {})  # fmt: skip
        if answer.status != 200:
            return answer
        if answer.body["errors"]:
            error = answer.body["errors"][0]
            return problem(400, "Invalid Resource", error["error"])
        return self.member(account, list_id, member_hash)

    def batch_subscribe(
        self, account: FakeAccount, list_id: str, raw: bytes, query: Mapping[str, str]
    ) -> FakeAnswer:
        """``POST /lists/{list_id}``: add or update up to 500 members, errors per member."""
        audience = account.audiences.get(list_id)
        if audience is None:
            return not_found()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return problem(400, "Invalid Resource", "The request body is not valid JSON.")
        members = body.get("members") if isinstance(body, dict) else None
        if not isinstance(members, list):
            return problem(
                400,
                "Invalid Resource",
                "The resource submitted could not be validated.",
                [{"field": "members", "message": "This value should be of type array"}],
            )
        limit = self.config.max_batch_members
        if len(members) > limit:
            return problem(
                400,
                "Invalid Resource",
                f"A batch may hold at most {limit} members; this one holds {len(members)}.",
            )
        schema_errors = [
            {"field": f"members.{n}", "message": message}
            for n, member in enumerate(members)
            if (message := _member_shape_problem(member)) is not None
        ]
        if schema_errors:
            return problem(
                400,
                "Invalid Resource",
                "The resource submitted could not be validated.",
                schema_errors,
            )
        update_existing = bool(body.get("update_existing", False))
        skip_merge = query.get("skip_merge_validation", "false").lower() == "true"
        skip_duplicates = query.get("skip_duplicate_check", "false").lower() == "true"
        created: list[dict[str, Any]] = []
        updated: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        seen: set[str] = set()
        stamp = now_text()
        with self._lock:
            # Looked up once per batch, not per member: the fake shares the CPU with the
            # service in the benchmark (bench/export_mailchimp.py).
            by_tag = audience.fields_by_tag()
            required = [spec for spec in audience.merge_fields if spec.required]
            for member in members:
                email = member["email_address"]
                key = subscriber_hash(email)
                if key in seen and not skip_duplicates:
                    errors.append(_error(email, f"{email} is in this batch more than once."))
                    continue
                seen.add(key)
                outcome = self._subscribe_one(
                    audience, member, update_existing, skip_merge, key, stamp, by_tag, required
                )
                if isinstance(outcome, dict):
                    errors.append(outcome)
                else:
                    (created if outcome[1] else updated).append(
                        {
                            "id": outcome[0].id,
                            "email_address": outcome[0].email_address,
                            "status": outcome[0].status,
                        }
                    )
        return FakeAnswer(
            200,
            {
                "new_members": created,
                "updated_members": updated,
                "errors": errors,
                "total_created": len(created),
                "total_updated": len(updated),
                "error_count": len(errors),
            },
        )

    def _subscribe_one(
        self,
        audience: FakeAudience,
        member: dict[str, Any],
        update_existing: bool,
        skip_merge: bool,
        key: str,
        stamp: str,
        by_tag: Mapping[str, FakeMergeField],
        required: Sequence[FakeMergeField],
    ) -> tuple[FakeMember, bool] | dict[str, Any]:
        email: str = member["email_address"]
        if not is_email(email):
            return _error(email, "Please provide a valid email address.", "email_address")
        domain = email.rsplit("@", 1)[1].lower()
        if domain in self.config.fake_domains:
            return _error(email, f"{email} looks fake or invalid, please enter a real email "
                                 "address.")  # fmt: skip
        existing = audience.members.get(key)
        if existing is not None and existing.forgotten:
            return _error(
                email,
                f"{email} was permanently deleted and cannot be re-imported. The contact must "
                "re-subscribe to get back on the list.",
            )
        is_new = existing is None or existing.status == "archived"
        if existing is not None and not is_new and not update_existing:
            return _error(email, f"{email} is already a list member. Use PUT to insert or "
                                 "update list members.", code="ERROR_CONTACT_EXISTS")  # fmt: skip
        wanted = member.get("status") or (member.get("status_if_new") if is_new else None)
        # The fact sheet: such addresses come back in errors, whatever the call asks.
        if existing is not None and existing.status in COMPLIANCE_STATUSES:
            return _error(
                email,
                f"{email} is in a compliance state due to unsubscribe, bounce, or compliance "
                "review and cannot be subscribed.",
            )
        sent = member.get("merge_fields") or {}
        merge = {**existing.merge_fields, **sent} if existing is not None and not is_new else sent
        for tag, value in sent.items():
            spec = by_tag.get(tag)
            if spec is None:
                continue  # unknown merge tags are ignored
            problem_text = spec.problem(value)
            if problem_text is not None and not skip_merge:
                return _error(email, "Your merge fields were invalid.", tag, problem_text)
        if is_new and not skip_merge:
            for spec in required:
                if merge.get(spec.tag) in (None, ""):
                    return _error(
                        email, "Your merge fields were invalid.", spec.tag, "Please enter a value"
                    )
        if is_new:
            status = wanted or "subscribed"
            record = FakeMember(email, status, merge, list(member.get("tags") or []), stamp, id=key)
            audience.members[record.id] = record
            return record, True
        assert existing is not None
        existing.merge_fields = merge
        if member.get("status"):
            existing.status = member["status"]
        existing.tags = sorted({*existing.tags, *(member.get("tags") or [])})
        existing.last_changed = stamp
        return existing, False

    # -- batch operations ---------------------------------------------------------------
    def start_batch(self, account: FakeAccount, raw: bytes) -> FakeAnswer:
        """``POST /batches``: the operations run now, their results are told in later polls."""
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return problem(400, "Invalid Resource", "The request body is not valid JSON.")
        operations = body.get("operations") if isinstance(body, dict) else None
        if not isinstance(operations, list) or not operations:
            return problem(400, "Invalid Resource", "operations must be a non-empty array")
        results = []
        for operation in operations:
            answer = self._operation(account, operation)
            results.append(
                {
                    "status_code": answer.status,
                    "operation_id": operation.get("operation_id"),
                    "response": orjson.dumps(answer.body).decode() if answer.body else "",
                }
            )
        batch_id = uuid.uuid4().hex[:10]
        errored = sum(1 for r in results if r["status_code"] >= 400)
        batch = {
            "id": batch_id,
            "status": "pending",
            "total_operations": len(operations),
            "finished_operations": 0,
            "errored_operations": 0,
            "submitted_at": now_text(),
            "completed_at": "",
            "response_body_url": "",
            "_polls": 0,
            "_errored": errored,
            "_owner": account.api_key,
        }
        with self._lock:
            self.batches[batch_id] = batch
            self._results[batch_id] = _results_archive(batch_id, results)
        return FakeAnswer(200, _public(batch))

    def _operation(self, account: FakeAccount, operation: Any) -> FakeAnswer:
        if not isinstance(operation, dict):
            return problem(400, "Invalid Resource", "an operation must be an object")
        method = str(operation.get("method", "")).upper()
        parts = str(operation.get("path", "")).strip("/").split("/")
        body = operation.get("body") or ""
        raw = body.encode() if isinstance(body, str) else b""
        if len(parts) == 4 and parts[0] == "lists" and parts[2] == "members":
            if method == "DELETE":
                return self.archive(account, parts[1], parts[3])
            if method == "PUT":
                return self.put_member(account, parts[1], parts[3], raw)
        if len(parts) == 2 and parts[0] == "lists" and method == "POST":
            return self.batch_subscribe(account, parts[1], raw, operation.get("params") or {})
        return not_found()

    def batch_status(self, account: FakeAccount, batch_id: str, base_url: str) -> FakeAnswer:
        with self._lock:
            batch = self.batches.get(batch_id)
            if batch is None or batch["_owner"] != account.api_key:
                return not_found()
            batch["_polls"] += 1
            polls = batch["_polls"]
            needed = max(1, self.config.batch_polls_to_finish)
            if polls >= needed:
                batch.update(
                    status="finished",
                    finished_operations=batch["total_operations"],
                    errored_operations=batch["_errored"],
                    completed_at=batch["completed_at"] or now_text(),
                    response_body_url=f"{base_url}/__fake__/batch-results/{batch_id}.tar.gz",
                )
            else:
                batch["status"] = "started" if polls > 1 else "preprocessing"
            return FakeAnswer(200, _public(batch))

    def batch_results(self, batch_id: str) -> FakeAnswer:
        with self._lock:
            data = self._results.get(batch_id)
        if data is None:
            return not_found()
        return FakeAnswer(200, raw=data, headers={"content-type": "application/x-gzip"})


def _public(batch: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in batch.items() if not k.startswith("_")}


def _results_archive(batch_id: str, results: list[dict[str, Any]]) -> bytes:
    """The per-operation results as Mailchimp hands them: a gzipped tar of JSON files."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        data = orjson.dumps(results)
        info = tarfile.TarInfo(f"{batch_id}/{batch_id}.json")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _member_shape_problem(member: Any) -> str | None:
    if not isinstance(member, dict):
        return "a member must be an object"
    if not isinstance(member.get("email_address"), str):
        return "email_address is required"
    for key in ("status", "status_if_new"):
        value = member.get(key)
        if value is not None and value not in NEW_MEMBER_STATUSES:
            return f"{key} must be one of {', '.join(NEW_MEMBER_STATUSES)}, not {value!r}"
    if member.get("merge_fields") is not None and not isinstance(member["merge_fields"], dict):
        return "merge_fields must be an object"
    tags = member.get("tags")
    if tags is not None and not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
        return "tags must be an array of strings"
    return None


def _error(
    email: str,
    message: str,
    field_name: str = "",
    field_message: str = "",
    code: str = "ERROR_GENERIC",
) -> dict[str, Any]:
    return {
        "email_address": email,
        "error": message,
        "error_code": code,
        "field": field_name,
        "field_message": field_message,
    }
