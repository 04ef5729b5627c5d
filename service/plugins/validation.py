"""Default validation of settings and mappings against what a destination declares.

It works on the declarations alone (:mod:`service.plugins.specs`), below the
:class:`~service.plugins.api.Destination` class whose default methods call it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from email_validator import EmailNotValidError, validate_email

from service.plugins.specs import MappingTarget, SettingError, SettingSpec


def is_uuid(value: str) -> bool:
    """True for the canonical 8-4-4-4-12 hexadecimal form."""
    if len(value) != 36:
        return False
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


def _check_value(spec: SettingSpec, value: Any) -> str | None:
    match spec.type:
        case "boolean":
            return None if isinstance(value, bool) else "must be true or false"
        case "integer":
            ok = isinstance(value, int) and not isinstance(value, bool)
            return None if ok else "must be an integer"
    if not isinstance(value, str):
        return "must be a string"
    if spec.max_length is not None and len(value) > spec.max_length:
        return f"must be at most {spec.max_length} characters"
    if spec.type == "uuid" and not is_uuid(value):
        return f"{value!r} is not a UUID (8-4-4-4-12 hexadecimal digits)"
    if spec.type == "url" and not value.startswith(("https://", "http://")):
        return f"{value!r} is not an http(s) URL"
    if spec.type == "email":
        try:
            validate_email(value, check_deliverability=False)
        except EmailNotValidError as exc:
            return str(exc)
    return None


def validate_settings(
    specs: Sequence[SettingSpec], settings: Mapping[str, Any]
) -> list[SettingError]:
    """Required settings present, each value of its declared type, no unknown names."""
    errors: list[SettingError] = []
    known = {spec.name for spec in specs}
    for name in settings:
        if name not in known:
            allowed = ", ".join(sorted(known)) or "none"
            errors.append(SettingError(name, f"unknown setting (allowed: {allowed})", "UNKNOWN"))
    for spec in specs:
        value = settings.get(spec.name)
        if value is None or value == "":
            if spec.required:
                errors.append(SettingError(spec.name, f"{spec.label} is required", "REQUIRED"))
            continue
        problem = _check_value(spec, value)
        if problem:
            errors.append(SettingError(spec.name, f"{spec.label} {problem}", "INVALID"))
    return errors


def validate_mapping(
    targets: Sequence[str],
    declared: Sequence[MappingTarget],
    is_known_target: Callable[[str], bool],
) -> list[SettingError]:
    """Every target known (``is_known_target``), none twice, every required one of the
    ``declared`` targets present."""
    errors: list[SettingError] = []
    seen: set[str] = set()
    for target in targets:
        if not is_known_target(target):
            errors.append(
                SettingError(target, f"unknown mapping target {target!r}", "UNKNOWN_TARGET")
            )
        elif target in seen:
            errors.append(SettingError(target, f"{target!r} is mapped twice", "DUPLICATE"))
        seen.add(target)
    for spec in declared:
        if spec.required and spec.name not in seen:
            errors.append(
                SettingError(spec.name, f"{spec.label} must be mapped", "REQUIRED_TARGET")
            )
    return errors
