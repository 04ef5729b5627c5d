"""The whole fake Constant Contact, independent of HTTP: its parts, knobs and admin view.

:class:`FakeConstantContact` ties together the roles, each in its own module, that
share one :class:`~.config.FakeConfig` and one lock (the server runs in its own
thread, so every change happens under ``self.lock``):

- :mod:`.oauth_server`: the authorization server (codes, tokens);
- :mod:`.rate_gate`: the gate in front of the API (token, rate limits, faults);
- :mod:`.contacts_api`: the account's lists, contacts, imports and activities;
- :mod:`.request_log`: every request, and what tests measure on them.

Each ``handle_*`` method takes what a request carried and returns a
:class:`~.answers.FakeAnswer`; :mod:`.app` is thin starlette glue around it. Tests
and the admin endpoints use the knobs (:meth:`configure`) and the views below.
"""

from __future__ import annotations

import collections
import random
import threading
from typing import Any

from segport_constant_contact.fake.answers import FakeAnswer
from segport_constant_contact.fake.config import FakeConfig
from segport_constant_contact.fake.contacts_api import FakeContactsApi
from segport_constant_contact.fake.oauth_server import AuthorizationCode, FakeAuthorizationServer
from segport_constant_contact.fake.rate_gate import RateGate
from segport_constant_contact.fake.records import (
    FakeActivity,
    FakeContact,
    FakeCustomField,
    FakeList,
    LoggedRequest,
)
from segport_constant_contact.fake.request_log import RequestLog


class FakeConstantContact:
    """The whole fake: one Constant Contact user account behind one client application."""

    def __init__(self, config: FakeConfig | None = None, **knobs: Any) -> None:
        self.config = config or FakeConfig()
        self.config.update(knobs)
        self.lock = threading.RLock()
        self.rng = random.Random(self.config.seed)
        self.api = FakeContactsApi(self.config, self.lock)
        self.oauth = FakeAuthorizationServer(
            self.config, self.lock, self.api.account["encoded_account_id"]
        )
        self.gatekeeper = RateGate(self.config, self.lock, self.rng, self.oauth)
        self.requests = RequestLog(self.lock)

    # -- what tests look at (the parts' own state) -------------------------------------
    @property
    def account(self) -> dict[str, Any]:
        return self.api.account

    @property
    def lists(self) -> dict[str, FakeList]:
        return self.api.lists

    @property
    def custom_fields(self) -> dict[str, FakeCustomField]:
        return self.api.custom_fields

    @property
    def contacts(self) -> dict[str, FakeContact]:
        return self.api.contacts

    @property
    def activities(self) -> dict[str, FakeActivity]:
        return self.api.activities

    @property
    def truncated_imports(self) -> int:
        """Imports whose body passed ``max_body_bytes`` (their excess contacts were lost)."""
        return self.api.truncated_imports

    @property
    def dropped_contacts(self) -> int:
        return self.api.dropped_contacts

    @property
    def codes(self) -> dict[str, AuthorizationCode]:
        return self.oauth.codes

    @property
    def refresh_tokens(self) -> dict[str, tuple[str, str]]:
        """refresh token -> (client id, scope)."""
        return self.oauth.refresh_tokens

    @property
    def access_token_ids(self) -> set[str]:
        return self.oauth.access_token_ids

    @property
    def request_log(self) -> list[LoggedRequest]:
        return self.requests.entries

    # -- administration (tests, the admin endpoint) ---------------------------------
    def configure(self, **knobs: Any) -> None:
        with self.lock:
            self.config.update(knobs)
            if "seed" in knobs:
                self.rng.seed(self.config.seed)

    def add_list(self, name: str, list_id: str | None = None, description: str = "") -> str:
        return self.api.add_list(name, list_id, description)

    def delete_list(self, list_id: str) -> None:
        self.api.delete_list(list_id)

    def add_custom_field(self, label: str, field_type: str = "string") -> str:
        """Add a custom field; returns its name (``cf:<name>`` in an import)."""
        return self.api.add_custom_field(label, field_type)

    def refused_requests(self) -> list[str]:
        """``METHOD path`` of every API request answered 400: a body or query the
        published description does not allow (docs/constant-contact.md)."""
        with self.lock:
            return [f"{r.method} {r.path}" for r in self.request_log if r.status == 400]

    def requests_to(self, method: str, path: str) -> int:
        """How many requests came for ``method path`` (any status)."""
        with self.lock:
            return sum(1 for r in self.request_log if (r.method, r.path) == (method, path))

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is refused from now on (401)."""
        self.oauth.expire_access_tokens()

    def issue_tokens(
        self, scope: str = "contact_data offline_access account_read"
    ) -> dict[str, Any]:
        """Tokens as if a user had authorized the app (for tests that skip the browser)."""
        return self.oauth.issue_tokens(scope)

    def list_members(self, list_id: str) -> set[str]:
        return self.api.list_members(list_id)

    def max_requests_in_window(self, seconds: float = 1.0, path_prefix: str = "/v3/") -> int:
        """Most API requests that arrived within any window of ``seconds``."""
        return self.requests.max_requests_in_window(seconds, path_prefix)

    def largest_body(self) -> int:
        return self.requests.largest_body()

    def most_records(self) -> int:
        return self.requests.most_records()

    def log(self, method: str, path: str, arrived: float, size: int, records: int | None,
            status: int) -> None:  # fmt: skip
        self.requests.log(method, path, arrived, size, records, status)

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
        return self.oauth.check_authorize(params)

    def approve(self, params: dict[str, str]) -> str:
        """The redirect after the user approved: a fresh single-use code and the state."""
        return self.oauth.approve(params)

    def handle_token(self, authorization: str | None, form: dict[str, str]) -> FakeAnswer:
        return self.oauth.handle_token(authorization, form)

    # -- the API's gate ----------------------------------------------------------------
    def gate(self, authorization: str | None, arrived: float) -> tuple[FakeAnswer | None, set[str]]:
        """An error answer for a request to /v3, or None and the token's scopes."""
        return self.gatekeeper.gate(authorization, arrived)

    def slow_delay(self) -> float:
        return self.gatekeeper.slow_delay()

    # -- the API -------------------------------------------------------------------------
    def handle_account_summary(self, scopes: set[str]) -> FakeAnswer:
        return self.api.handle_account_summary(scopes)

    def handle_contact_lists(self, params: dict[str, str]) -> FakeAnswer:
        return self.api.handle_contact_lists(params)

    def handle_custom_fields(self, params: dict[str, str]) -> FakeAnswer:
        return self.api.handle_custom_fields(params)

    def handle_activities(self, params: dict[str, str]) -> FakeAnswer:
        return self.api.handle_activities(params)

    def handle_json_import(self, content_type: str | None, raw: bytes) -> tuple[FakeAnswer, int]:
        """The answer and how many contacts it carried (for the request log)."""
        return self.api.handle_json_import(content_type, raw)

    def handle_memberships(self, raw: bytes, add: bool) -> FakeAnswer:
        return self.api.handle_memberships(raw, add)

    def handle_activity(self, activity_id: str) -> FakeAnswer:
        return self.api.handle_activity(activity_id)

    def handle_contacts(self, params: dict[str, str]) -> FakeAnswer:
        return self.api.handle_contacts(params)

    def handle_contact_export(self, raw: bytes) -> FakeAnswer:
        return self.api.handle_contact_export(raw)

    def handle_export_file(self, file_export_id: str) -> FakeAnswer:
        return self.api.handle_export_file(file_export_id)


__all__ = ["FakeAnswer", "FakeConstantContact", "LoggedRequest"]
