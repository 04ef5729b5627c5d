"""The shared conformance suite of the testing kit: what every destination must do.

A plugin's tests describe their destination in a :class:`ConformanceCase` (the destination,
a context connected to a real server speaking its API, valid and invalid mapped values)
and assert that :func:`declaration_problems` and :func:`conformance_problems` find
nothing. The suite checks what the service relies on whatever the destination:

- declarations: a key, a name, known ways to connect (each once, ``auth_kind`` the first
  of ``auth_kinds``), unique setting and target names, secrets only among the connection
  settings (and at least one for ``api_key`` connections), limits the service can
  enforce, required settings (of each way to connect) and targets refused when missing;
- records: valid values build a record, invalid ones a :class:`Rejection`, the same
  values the same de-duplication key, batches packed within the declared limits;
- a live round trip (by the way to connect of the case's context): the credentials
  verify, every uploaded record is accounted for exactly once (accepted, rejected or
  cannot-add, synchronously or once confirmed), member removal (when declared) answers
  once per member and is idempotent, and an in-flight cap (when declared) is never
  exceeded.

Problems are returned as sentences, so a failing test says what is wrong. Only names in
``__all__`` are public (docs/plugins.md lists them).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from service.plugins.api import (
    AuthKind,
    BatchOutcome,
    Destination,
    DestinationContext,
    DestinationSession,
    ListMember,
    Rejection,
    SettingSpec,
)
from service.plugins.testing import InMemoryRateLimiter, pack_batches

_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
AUTH_KINDS = ("oauth2", "api_key", "none")


@dataclass
class ConformanceCase:
    """One destination, connected to a server that speaks its API."""

    destination: Destination
    context: Callable[[], DestinationContext]
    """A fresh context for one export (its export settings included), as the service would
    build it; with an :class:`~service.plugins.testing.InMemoryRateLimiter`, the in-flight
    cap is checked too."""
    valid_values: Sequence[Mapping[str, Any]]
    """Mapped values (target name to value) that build records the server accepts."""
    invalid_values: Sequence[Mapping[str, Any]] = ()
    """Mapped values ``build_record`` must reject."""
    export_settings: Mapping[str, Any] = field(default_factory=dict)


def declaration_problems(destination: Destination) -> list[str]:
    """What is wrong with what ``destination`` declares (empty when nothing is)."""
    problems: list[str] = []
    d = destination
    if not isinstance(getattr(d, "key", None), str) or not _KEY.match(d.key):
        problems.append(f"key {getattr(d, 'key', None)!r} is not a lower-case identifier")
    if not getattr(d, "display_name", ""):
        problems.append("display_name is empty")
    problems += _auth_kind_problems(d)
    groups: list[tuple[str, AuthKind | None, Sequence[SettingSpec]]] = [
        ("connection", kind, d.connection_settings_for(kind))
        for kind in d.auth_kinds
        if kind in AUTH_KINDS
    ]
    groups.append(("export", None, d.export_settings))
    for group, kind, specs in groups:
        where = (
            f"{group} settings"
            if len(d.auth_kinds) == 1 or kind is None
            else (f"{group} settings of {kind} connections")
        )
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            problems.append(f"{where} name one setting twice: {names}")
        missing = {e.field for e in _validate(d, kind, {}) if e.code == "REQUIRED"}
        for spec in specs:
            if spec.required and spec.name not in missing:
                problems.append(f"required {where} {spec.name!r} is not refused when absent")
    if any(s.secret for s in d.export_settings):
        problems.append("export settings cannot be secret (they are shown to contributors)")
    if "api_key" in d.auth_kinds and not any(
        s.secret for s in d.connection_settings_for("api_key")
    ):
        problems.append("an api_key destination declares no secret connection setting")
    targets = [t.name for t in d.mapping_targets]
    if len(set(targets)) != len(targets):
        problems.append(f"mapping targets name one target twice: {targets}")
    unmapped = {e.field for e in d.validate_mapping([]) if e.code == "REQUIRED_TARGET"}
    for target in d.mapping_targets:
        if target.required and target.name not in unmapped:
            problems.append(f"required target {target.name!r} is not refused when unmapped")
    limits = d.limits
    if limits.batch_max_records < 1 or limits.max_concurrent_uploads < 1:
        problems.append("batch_max_records and max_concurrent_uploads must be at least 1")
    if limits.max_requests_in_flight is not None and limits.max_requests_in_flight < 1:
        problems.append("max_requests_in_flight must be None or at least 1")
    if d.can_remove_list_members and limits.removal_batch_max_records < 1:
        problems.append("removal_batch_max_records must be at least 1")
    return problems


def _auth_kind_problems(d: Destination) -> list[str]:
    """The ways to connect: known ones, each once, the default first (plugin API 1.3)."""
    kinds = tuple(d.auth_kinds)
    if not kinds:
        return ["auth_kinds is empty: a destination offers at least one way to connect"]
    problems = [
        f"auth_kind {kind!r} is not one of {', '.join(AUTH_KINDS)}"
        for kind in kinds
        if kind not in AUTH_KINDS
    ]
    if len(set(kinds)) != len(kinds):
        problems.append(f"auth_kinds names one way to connect twice: {list(kinds)}")
    if d.auth_kind != kinds[0]:
        problems.append(
            f"auth_kind {d.auth_kind!r} is not the first of auth_kinds {list(kinds)} "
            "(the way a connection that does not say connects)"
        )
    if "none" in kinds and len(kinds) > 1:
        problems.append("auth_kinds offers 'none' beside other ways to connect")
    return problems


def _validate(d: Destination, kind: AuthKind | None, settings: Mapping[str, Any]) -> list[Any]:
    if kind is not None:
        return d.validate_connection_settings_for(kind, settings)
    return d.validate_export_settings(settings)


def record_problems(case: ConformanceCase) -> list[str]:
    """What is wrong with how the destination builds, keys and packs records."""
    d = case.destination
    problems: list[str] = []
    for values in case.valid_values:
        first, second = d.build_record(values), d.build_record(values)
        if isinstance(first, Rejection) or isinstance(second, Rejection):
            problems.append(f"valid values {values!r} were rejected: {first}")
            continue
        if d.record_dedupe_key(first) != d.record_dedupe_key(second):
            problems.append(f"the same values give two de-duplication keys: {values!r}")
        if not isinstance(d.encode_record(first), bytes):
            problems.append("encode_record does not return bytes")
    for values in case.invalid_values:
        if not isinstance(d.build_record(values), Rejection):
            problems.append(f"invalid values {values!r} were not rejected")
    envelope = d.batch_envelope_size(case.export_settings)
    if envelope < 0 or envelope >= d.limits.batch_max_bytes:
        problems.append(f"the envelope ({envelope} bytes) leaves no room under batch_max_bytes")
    if problems:
        return problems
    for batch in pack_batches(d, case.valid_values, case.export_settings):
        if len(batch.records) > d.limits.batch_max_records:
            problems.append(f"a batch of {len(batch.records)} records is over the limit")
        if batch.size_bytes >= d.limits.batch_max_bytes:
            problems.append(f"a batch of {batch.size_bytes} bytes is over the limit")
    return problems


def _accounted(outcome: BatchOutcome) -> int:
    return outcome.accepted + len(outcome.rejected) + len(outcome.cannot_add_to_list)


async def conformance_problems(case: ConformanceCase) -> list[str]:
    """Every check of the suite: declarations, records, and a live round trip."""
    problems = declaration_problems(case.destination) + record_problems(case)
    if problems:
        return problems
    d = case.destination
    ctx = case.context()
    await d.verify_connection(ctx)
    batches = pack_batches(d, case.valid_values, case.export_settings)
    session = d.open_session(ctx)
    try:
        for batch in batches:
            outcome = await session.upload(batch)
            records = len(batch.records)
            if outcome.batch_error is not None:
                problems.append(f"the server refused a valid batch: {outcome.batch_error}")
            elif outcome.receipt is None:
                if _accounted(outcome) != records:
                    problems.append(
                        f"a synchronous batch of {records} accounts for {_accounted(outcome)}"
                    )
            else:
                done = await session.confirm(outcome.receipt)
                total = outcome.accepted + done.accepted + done.rejected + done.cannot_add_to_list
                if done.failure is None and total != records:
                    problems.append(f"a confirmed batch of {records} accounts for {total}")
        if d.can_remove_list_members:
            problems += await _removal_problems(case, session)
    finally:
        await session.aclose()
    cap = d.limits.max_requests_in_flight
    limiter = ctx.rate_limiter
    if cap is not None and isinstance(limiter, InMemoryRateLimiter):
        peak = max(limiter.peak_in_flight.values(), default=0)
        if peak > cap:
            problems.append(f"{peak} requests were in flight at once; the cap is {cap}")
    return problems


async def _removal_problems(case: ConformanceCase, session: DestinationSession) -> list[str]:
    d = case.destination
    keys = []
    for values in case.valid_values:
        record = d.build_record(values)
        assert not isinstance(record, Rejection)  # checked by record_problems
        keys.append(d.record_dedupe_key(record))
    members = [ListMember(key) for key in keys[: d.limits.removal_batch_max_records]]
    problems: list[str] = []
    for attempt in ("first", "repeated"):
        outcomes = await session.remove_list_members(members)
        if sorted(o.key for o in outcomes) != sorted(m.key for m in members):
            problems.append(f"the {attempt} removal does not answer once per member")
        refused = [o for o in outcomes if not o.removed]
        if refused:
            problems.append(f"the {attempt} removal refused {len(refused)}: {refused[0].reason}")
    return problems


__all__ = [
    "ConformanceCase",
    "conformance_problems",
    "declaration_problems",
    "record_problems",
]
