"""The toy destination, a separate package, plugs into segport through its entry point alone.

Nothing under ``service/`` names it: discovery, settings and mapping validation,
record building and uploads all go through the public plugin API.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import orjson
import pytest
from segport_toy_destination.destination import WebhookCollector

from service.plugins import (
    AuthorizationLost,
    InvalidCredentials,
    ListMember,
    Rejection,
    RemovalOutcome,
    TransientDestinationError,
    UploadBatch,
)
from service.plugins.testing import discover_destinations, pack_batches
from tests.plugins.toy_collector import ACCOUNT_NAME, CollectorState
from tests.plugins.toy_context import ContextFactory

SERVICE_DIR = Path(__file__).resolve().parents[2] / "service"


def _batch(destination: WebhookCollector, *emails: str) -> UploadBatch:
    """The emails packed into one batch as a run packs them."""
    values = [{"email": email, "name": f"Person {n}"} for n, email in enumerate(emails)]
    [batch] = pack_batches(destination, values, {})
    return batch


def test_the_toy_plugin_is_installed_under_the_segport_entry_point_group() -> None:
    names = {ep.name: ep.value for ep in entry_points(group="segport.destinations")}
    assert names.get("toy_webhook") == "segport_toy_destination.plugin"


def test_entry_point_discovery_registers_the_webhook_destination(toy: WebhookCollector) -> None:
    assert toy.display_name == "Webhook collector"
    assert toy.auth_kind == "api_key"
    assert [s.name for s in toy.connection_settings if s.secret] == ["apiKey"]


def test_without_entry_points_the_toy_destination_is_absent() -> None:
    assert "toy_webhook" not in discover_destinations(entry_points=False)


def test_the_collector_url_comes_from_the_server_environment(
    toy: WebhookCollector, toy_env: str
) -> None:
    assert toy.base_url == toy_env


def test_no_file_under_service_mentions_the_toy_plugin() -> None:
    offenders = [
        str(path)
        for path in SERVICE_DIR.rglob("*.py")
        if "toy_webhook" in path.read_text() or "segport_toy_destination" in path.read_text()
    ]
    assert offenders == []


def test_export_settings_require_an_endpoint(toy: WebhookCollector) -> None:
    errors = toy.validate_export_settings({})
    assert [(e.field, e.code) for e in errors] == [("endpoint", "REQUIRED")]


def test_an_endpoint_with_forbidden_characters_is_refused_by_name(toy: WebhookCollector) -> None:
    errors = toy.validate_export_settings({"endpoint": "News Letter!"})
    assert len(errors) == 1
    assert errors[0].field == "endpoint"
    assert "'News Letter!'" in errors[0].message


def test_unknown_export_settings_are_refused(toy: WebhookCollector) -> None:
    errors = toy.validate_export_settings({"endpoint": "news", "listId": "x"})
    assert [(e.field, e.code) for e in errors] == [("listId", "UNKNOWN")]


def test_connection_settings_require_the_api_key(toy: WebhookCollector) -> None:
    assert [e.field for e in toy.validate_connection_settings({})] == ["apiKey"]
    assert toy.validate_connection_settings({"apiKey": "k"}) == []


def test_mapping_requires_email_and_refuses_unknown_targets(toy: WebhookCollector) -> None:
    assert toy.validate_mapping(["email", "name"]) == []
    codes = {(e.field, e.code) for e in toy.validate_mapping(["name", "phone"])}
    assert codes == {("phone", "UNKNOWN_TARGET"), ("email", "REQUIRED_TARGET")}


def test_build_record_trims_values_and_keeps_the_name(toy: WebhookCollector) -> None:
    assert toy.build_record({"email": " Ann@Example.com ", "name": " Ann "}) == {
        "email": "Ann@Example.com",
        "name": "Ann",
    }


@pytest.mark.parametrize(
    ("values", "code"),
    [
        ({}, "EMAIL_MISSING"),
        ({"email": "   "}, "EMAIL_MISSING"),
        ({"email": "not-an-address"}, "EMAIL_INVALID"),
        ({"email": "a@example.com", "name": "x" * 101}, "TOO_LONG"),
    ],
)
def test_build_record_rejects_bad_values_with_a_reason(
    toy: WebhookCollector, values: dict[str, str], code: str
) -> None:
    result = toy.build_record(values)
    assert isinstance(result, Rejection)
    assert result.code == code


def test_an_invalid_email_rejection_names_the_value(toy: WebhookCollector) -> None:
    result = toy.build_record({"email": "not-an-address"})
    assert isinstance(result, Rejection)
    assert "'not-an-address'" in result.message


def test_duplicates_are_detected_case_insensitively(toy: WebhookCollector) -> None:
    assert toy.record_dedupe_key({"email": "A@x.io"}) == toy.record_dedupe_key({"email": "a@X.IO"})


async def test_verify_connection_returns_the_account_name(
    toy: WebhookCollector, toy_context: ContextFactory, collector: CollectorState
) -> None:
    assert await toy.verify_connection(toy_context()) == ACCOUNT_NAME


async def test_verify_connection_refuses_a_wrong_api_key(
    toy: WebhookCollector, toy_context: ContextFactory, collector: CollectorState
) -> None:
    with pytest.raises(InvalidCredentials):
        await toy.verify_connection(toy_context(api_key="wrong"))


async def test_upload_posts_the_batch_and_reports_per_record_rejections(
    toy: WebhookCollector, toy_context: ContextFactory, collector: CollectorState
) -> None:
    batch = _batch(toy, "ann@example.com", "bob@blocked.example", "cy@example.com")
    session = toy.open_session(toy_context(endpoint="spring"))
    outcome = await session.upload(batch)
    await session.aclose()
    assert outcome.accepted == 2
    assert [(r.profile_id, r.rejection.code) for r in outcome.rejected] == [("p1", "BLOCKED")]
    assert [c["email"] for c in collector.received["spring"]] == [
        "ann@example.com",
        "cy@example.com",
    ]


async def test_removal_takes_members_off_the_endpoint_and_reports_each_one(
    toy: WebhookCollector, toy_context: ContextFactory, collector: CollectorState
) -> None:
    assert toy.can_remove_list_members
    session = toy.open_session(toy_context(endpoint="spring"))
    await session.upload(_batch(toy, "Ann@example.com", "cy@example.com", "dee@locked.example"))
    members = [ListMember("ann@example.com"), ListMember("dee@locked.example")]
    members.append(ListMember("never@example.com"))
    outcomes = await session.remove_list_members(members)
    await session.aclose()
    assert outcomes == [
        RemovalOutcome("ann@example.com", removed=True),
        RemovalOutcome("dee@locked.example", removed=False, reason="this member is locked"),
        RemovalOutcome("never@example.com", removed=True),
    ]
    assert [c["email"] for c in collector.received["spring"]] == [
        "cy@example.com",
        "dee@locked.example",
    ]


async def test_the_declared_batch_size_is_the_exact_request_body_size(
    toy: WebhookCollector, toy_context: ContextFactory, collector: CollectorState
) -> None:
    batch = _batch(toy, "ann@example.com", "cy@example.com")
    body = b'{"contacts":[' + b",".join(r.encoded for r in batch.records) + b"]}"
    assert batch.size_bytes == len(body)
    assert orjson.loads(body)["contacts"][1]["email"] == "cy@example.com"


async def test_server_errors_are_retried_then_succeed(
    toy: WebhookCollector, toy_context: ContextFactory, collector: CollectorState
) -> None:
    collector.fail_next.extend([503, 429])
    outcome = await toy.open_session(toy_context()).upload(_batch(toy, "ann@example.com"))
    assert outcome.accepted == 1
    assert collector.requests == 3


async def test_persistent_server_errors_become_a_transient_failure(
    toy: WebhookCollector, toy_context: ContextFactory, collector: CollectorState
) -> None:
    collector.fail_next.extend([503] * 10)
    with pytest.raises(TransientDestinationError, match="503"):
        await toy.open_session(toy_context()).upload(_batch(toy, "ann@example.com"))


async def test_a_revoked_api_key_during_upload_loses_the_authorization(
    toy: WebhookCollector, toy_context: ContextFactory, collector: CollectorState
) -> None:
    with pytest.raises(AuthorizationLost):
        await toy.open_session(toy_context(api_key="revoked")).upload(
            _batch(toy, "ann@example.com")
        )
