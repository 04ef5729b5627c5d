"""No secret and no customer e-mail reaches the logs of a whole export, end to end.

Distributed mode with real processes: ``segport serve`` and ``segport worker``
share a SQLite file and Redis database 6, log JSON at DEBUG, and talk to the fake
Constant Contact (a thread of this test) through the installed plugin. The test
drives everything over HTTP as a client would: create a connection, authorize it
in a "browser" at the fake, add itself as export user, load profiles (valid,
invalid and duplicate e-mails), create an export and run it while the fake's
access tokens have been expired (so the worker refreshes them) and the fake
throttles and fails some requests. Then every line either process wrote is
scanned for every secret and every e-mail address the test used.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from segport_constant_contact.fake import FakeConstantContact, RunningFake, run_fake
from segport_constant_contact.fake.state import FakeAnswer

from service.access.auth import mint_token
from service.domain import Role
from tests.runs.cc_world import NEWSLETTER_LIST, fast_cc_environment
from tests.support.logscan import LogCapture, assert_contains, assert_no_secrets
from tests.support.net import free_port
from tests.support.redis_db import flushed_redis, shared_redis_url
from tests.support.settings import TEST_ENCRYPTION_KEY, TEST_JWT_SECRET, make_settings

REDIS_URL = shared_redis_url(6)
SEGPORT = str(Path(sys.executable).with_name("segport"))
START_TIMEOUT = 30.0
VALID = 120
INVALID_EMAILS = ["reader.at.example.com", "two@@example.com", "trailing-dot@example."]
"""Skipped by validation: customer data all the same, and no pattern would redact them."""


def valid_email(i: int) -> str:
    return f"Reader{i}@Example.com"


class RecordingFake(FakeConstantContact):
    """The fake, remembering every OAuth code and token it hands out."""

    def __init__(self, **knobs: Any) -> None:
        super().__init__(**knobs)
        self.handed_out: list[str] = []

    def approve(self, params: dict[str, str]) -> str:
        target = super().approve(params)
        query = parse_qs(urlsplit(target).query)
        self.handed_out += query["code"] + query["state"]
        return target

    def handle_token(self, authorization: str | None, form: dict[str, str]) -> FakeAnswer:
        answer = super().handle_token(authorization, form)
        if answer.status == 200:
            self.handed_out += [answer.body["access_token"], answer.body["refresh_token"]]
        return answer

    def statuses(self) -> set[int]:
        with self.lock:
            return {request.status for request in self.request_log}


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[str]
    logs: LogCapture

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.logs.join()


@dataclass
class Deployment:
    """An API process and a worker process, and what a client needs to talk to them."""

    base_url: str
    fake: RunningFake
    state: RecordingFake
    bearer: str
    env: dict[str, str]
    processes: list[Process] = field(default_factory=list)

    def start(self, name: str, *args: str, **extra_env: str) -> Process:
        popen = subprocess.Popen(
            [SEGPORT, *args],
            env={**self.env, **extra_env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        process = Process(name, popen, LogCapture.attach(popen))
        self.processes.append(process)
        return process

    async def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=30) as http:
            answer = await http.post(
                f"{self.base_url}/graphql",
                json={"query": query, "variables": variables or {}},
                headers={"Authorization": f"Bearer {self.bearer}"},
            )
        body: dict[str, Any] = answer.json()
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data

    async def mutate(self, query: str, variables: dict[str, Any], name: str) -> dict[str, Any]:
        payload: dict[str, Any] = (await self.graphql(query, variables))[name]
        assert payload["userErrors"] == [], payload
        return payload


async def wait_until_serving(process: Process, base_url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    async with httpx.AsyncClient() as http:
        while True:
            try:
                if (await http.get(f"{base_url}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if process.popen.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    "segport serve did not start:\n" + "\n".join(process.logs.snapshot()[-30:])
                )
            await asyncio.sleep(0.1)


@pytest.fixture
def fake() -> Iterator[RunningFake]:
    state = RecordingFake(seed=22, requests_per_second=20)
    with run_fake(state=state) as running:
        yield running


@pytest.fixture
async def redis_db() -> AsyncIterator[None]:
    async with flushed_redis(REDIS_URL):
        yield


@pytest.fixture
async def deployment(
    tmp_path: Path, fake: RunningFake, redis_db: None
) -> AsyncIterator[Deployment]:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    database_url = f"sqlite:///{tmp_path / 'shared.db'}"
    settings = make_settings(database_url, public_url=base_url)
    fake.state.configure(redirect_uris=[settings.oauth_redirect_uri])
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        **fast_cc_environment(fake),
        "SEGPORT_DATABASE_URL": database_url,
        "SEGPORT_REDIS_URL": REDIS_URL,
        "SEGPORT_JWT_SECRET": TEST_JWT_SECRET,
        "SEGPORT_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
        "SEGPORT_PUBLIC_URL": base_url,
        "SEGPORT_LOG_FORMAT": "json",
        "SEGPORT_LOG_LEVEL": "DEBUG",
        "SEGPORT_RUN_HEARTBEAT_SECONDS": "0.5",
        "SEGPORT_SCHEDULE_TICK_SECONDS": "1",
        "SEGPORT_JOB_COMPLETION_WAIT_SECONDS": "1",
    }
    assert isinstance(fake.state, RecordingFake)
    bearer = mint_token(settings, "alice", [Role.ADMIN])
    running = Deployment(base_url, fake, fake.state, bearer, env)
    try:
        api = running.start("api", "serve", "--port", str(port))
        running.start("worker", "worker", SEGPORT_WORKER_METRICS_PORT=str(free_port()))
        await wait_until_serving(api, base_url)
        yield running
    finally:
        for process in running.processes:
            process.stop()


CREATE_CONNECTION = """
mutation($input: CreateConnectionInput!) {
  createConnection(input: $input) { connection { id } userErrors { field message code } }
}"""
AUTHORIZE = """
mutation($id: ID!) {
  authorizeConnection(input: {connectionId: $id}) {
    authorizationUrl userErrors { field message code }
  }
}"""
ADD_EXPORT_USER = """
mutation($id: ID!) {
  addExportUser(input: {connectionId: $id}) {
    connection { status exportUser } userErrors { field message code }
  }
}"""
UPSERT_SEGMENT = """
mutation($name: String!) {
  upsertSegment(input: {name: $name}) { segment { id } userErrors { field message code } }
}"""
UPSERT_PROFILES = """
mutation($profiles: [ProfileInput!]!) {
  upsertProfiles(input: {profiles: $profiles}) { upsertedCount userErrors { field message code } }
}"""
CREATE_EXPORT = """
mutation($input: CreateExportInput!) {
  createExport(input: $input) { export { id } userErrors { field message code } }
}"""
RUN_EXPORT = """
mutation($id: ID!) {
  runExport(input: {exportId: $id}) { exportRun { id } userErrors { field message code } }
}"""
RUN = """
query($id: ID!) {
  node(id: $id) {
    ... on ExportRun {
      status message requestedBy
      counts { profilesRead contactsSent skippedInvalid skippedDuplicate acceptedByDestination }
      errors { code message }
    }
  }
}"""


def profiles(segment_id: str) -> list[dict[str, Any]]:
    rows = [
        {
            "id": f"p{i:04d}",
            "attributes": {"EmailAddress": valid_email(i), "FirstName": f"First{i}"},
            "segmentIds": [segment_id],
        }
        for i in range(VALID)
    ]
    rows += [
        {"id": f"x{i}", "attributes": {"EmailAddress": email}, "segmentIds": [segment_id]}
        for i, email in enumerate(INVALID_EMAILS)
    ]
    # Another spelling of a valid address: skipped as a duplicate.
    rows.append(
        {
            "id": "y0",
            "attributes": {"EmailAddress": "reader7@example.com"},
            "segmentIds": [segment_id],
        }
    )
    return rows


async def connect_constant_contact(deployment: Deployment) -> str:
    created = await deployment.mutate(
        CREATE_CONNECTION,
        {
            "input": {
                "destinationType": "constant_contact",
                "displayName": "Marketing CC",
                "acceptDataPrivacy": True,
            }
        },
        "createConnection",
    )
    connection_id: str = created["connection"]["id"]
    authorize = await deployment.mutate(AUTHORIZE, {"id": connection_id}, "authorizeConnection")
    async with httpx.AsyncClient(follow_redirects=True) as browser:
        page = await browser.get(authorize["authorizationUrl"])
    # Through /oauth/callback and on to the console (SEGPORT_UI_URL unset).
    assert page.url.path == "/console/", page.url
    assert page.url.params["status"] == "connected", page.url
    assert page.status_code == 200, page.text
    added = await deployment.mutate(ADD_EXPORT_USER, {"id": connection_id}, "addExportUser")
    assert added["connection"] == {"status": "CONNECTED", "exportUser": "alice"}
    return connection_id


async def until_finished(deployment: Deployment, run_id: str) -> dict[str, Any]:
    async def poll() -> dict[str, Any]:
        while True:
            run: dict[str, Any] = (await deployment.graphql(RUN, {"id": run_id}))["node"]
            if run["status"] not in ("QUEUED", "RUNNING"):
                return run
            await asyncio.sleep(0.2)

    return await asyncio.wait_for(poll(), 90)


async def test_a_whole_export_with_refresh_and_retries_logs_no_secret_and_no_email(
    deployment: Deployment,
) -> None:
    fake = deployment.state
    connection_id = await connect_constant_contact(deployment)
    segment = await deployment.mutate(UPSERT_SEGMENT, {"name": "Readers"}, "upsertSegment")
    segment_id = segment["segment"]["id"]
    loaded = await deployment.mutate(
        UPSERT_PROFILES, {"profiles": profiles(segment_id)}, "upsertProfiles"
    )
    assert loaded["upsertedCount"] == VALID + len(INVALID_EMAILS) + 1
    export = await deployment.mutate(
        CREATE_EXPORT,
        {
            "input": {
                "displayName": "Readers to newsletter",
                "connectionId": connection_id,
                "settings": {"listId": NEWSLETTER_LIST},
                "fieldMapping": [
                    {"source": "EmailAddress", "target": "email"},
                    {"source": "FirstName", "target": "first_name"},
                ],
                "segmentIds": [segment_id],
            }
        },
        "createExport",
    )
    # The stored access token stops working (the worker must refresh it), and the
    # fake throttles or fails a share of the requests (the plugin must retry).
    fake.expire_access_tokens()
    fake.configure(throttle_share=0.3, server_error_share=0.3)

    started = await deployment.mutate(RUN_EXPORT, {"id": export["export"]["id"]}, "runExport")
    run = await until_finished(deployment, started["exportRun"]["id"])

    assert run["status"] == "SUCCEEDED", run
    assert run["counts"] == {
        "profilesRead": VALID + len(INVALID_EMAILS) + 1,
        "contactsSent": VALID,
        "skippedInvalid": len(INVALID_EMAILS),
        "skippedDuplicate": 1,
        "acceptedByDestination": VALID,
    }
    assert fake.list_members(NEWSLETTER_LIST) == {valid_email(i).lower() for i in range(VALID)}
    # What the logs are checked against really happened: a refresh, a 429, a 503.
    assert {401, 429, 503} <= fake.statuses()
    assert len(fake.handed_out) >= 6, "code and state, then two token answers (connect, refresh)"

    for process in deployment.processes:
        process.stop()
    api, worker = (process.logs.snapshot() for process in deployment.processes)
    assert_contains(api, "run_requested")
    assert_contains(worker, "run_finished")
    assert_contains(api + worker, '"level": "debug"')
    emails = [valid_email(i) for i in range(VALID)]
    emails += [email.lower() for email in emails] + INVALID_EMAILS + ["reader7@example.com"]
    secrets = [
        *fake.handed_out,
        fake.config.client_secret,
        TEST_JWT_SECRET,
        TEST_ENCRYPTION_KEY,
        deployment.bearer,
    ]
    # Nothing had to be caught by the redaction safety net: no leak at any source.
    caught = [n for n, line in enumerate(api + worker, 1) if "[redacted]" in line]
    assert not caught, f"lines {caught} held something the redaction had to blank"
    assert_no_secrets(api, secrets)
    assert_no_secrets(worker, secrets)
    assert_no_secrets(api, emails)
    assert_no_secrets(worker, emails)
