"""Mapping targets and member records: ``email_address`` plus the audience's merge fields.

A mapping names merge fields by their tag (``FNAME``, ``BIRTHDAY``). What a tag may
hold depends on the audience (its merge field's ``type`` and ``options``), which
:meth:`~service.plugins.Destination.build_record` cannot see: it validates the address
and keeps the raw values, and the session normalizes each value by its field's type
once it has read the audience's merge fields (:func:`normalize_merge_fields`). An
invalid optional value is left out with a field warning; the member is still sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from service.plugins import MappingTarget, Rejection, SettingError

EMAIL_MAX_LENGTH = 254
EMAIL_TARGET = MappingTarget(
    "email_address", "E-mail address", required=True, max_length=EMAIL_MAX_LENGTH, kind="email"
)
MAPPING_TARGETS = (EMAIL_TARGET,)
"""What every audience has; its merge fields come from the account."""

_TAG = re.compile(r"^[A-Z][A-Z0-9_]{0,9}$")
"""A merge tag: upper case, at most 10 characters."""
TEXT_MAX_LENGTH = 255
ADDRESS_PARTS = ("addr1", "addr2", "city", "state", "zip", "country")
REQUIRED_ADDRESS_PARTS = ("addr1", "city", "state", "zip")
_BIRTHDAY = re.compile(r"^(\d{1,2})/(\d{1,2})$")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ].*)?$")
KINDS = {
    "number": "number",
    "address": "address",
    "phone": "phone",
    "date": "date",
    "birthday": "date",
}


_COMMON_ADDRESS = re.compile(
    r"[A-Za-z0-9._%+'-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)
"""The everyday address (ASCII local part without dots at its ends or twice, host labels,
an alphabetic top-level domain): accepted without the full validator, which costs more
than all the rest of a member's work. Anything else goes through email-validator."""


def _common_address(text: str) -> bool:
    if _COMMON_ADDRESS.fullmatch(text) is None:
        return False
    local, _, domain = text.rpartition("@")
    if local.startswith(".") or local.endswith(".") or ".." in local or "--" in domain:
        return False
    return domain.rpartition(".")[2].lower() not in SPECIAL_USE_DOMAIN_NAMES


def is_merge_tag(target: str) -> bool:
    return _TAG.match(target) is not None


@dataclass(frozen=True, slots=True)
class MergeField:
    """One merge field of an audience, as ``GET /lists/{id}/merge-fields`` describes it."""

    tag: str
    name: str
    type: str
    required: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MergeField:
        return cls(
            tag=str(data.get("tag", "")),
            name=str(data.get("name") or data.get("tag", "")),
            type=str(data.get("type", "text")),
            required=bool(data.get("required", False)),
            options=dict(data.get("options") or {}),
        )

    def target(self) -> MappingTarget:
        return MappingTarget(
            self.tag,
            self.name,
            required=self.required,
            max_length=TEXT_MAX_LENGTH if self.type == "text" else None,
            kind=KINDS.get(self.type, "string"),
        )


@dataclass(frozen=True, slots=True)
class Invalid:
    """A value its merge field cannot take: a stable code and why (never quoting the value:
    run errors carry no values)."""

    code: str
    why: str


def build_member(values: Mapping[str, Any]) -> dict[str, Any] | Rejection:
    """A member (``email_address``, raw ``merge_fields``) from mapped values, or why not."""
    email = values.get("email_address")
    if not isinstance(email, str) or not email.strip():
        return Rejection("EMAIL_MISSING", "the profile has no e-mail address", "email_address")
    email = email.strip()
    if len(email) > EMAIL_MAX_LENGTH:
        return Rejection("TOO_LONG", f"the e-mail address is longer than {EMAIL_MAX_LENGTH} "
                         "characters", "email_address")  # fmt: skip
    if not _common_address(email):
        try:
            validate_email(email, check_deliverability=False)
        except EmailNotValidError as exc:
            return Rejection("EMAIL_INVALID", f"{email!r} is not an e-mail address: {exc}",
                             "email_address")  # fmt: skip
    merge: dict[str, Any] = {}
    for target, value in values.items():
        if target == "email_address" or value is None:
            continue
        if isinstance(value, str):
            value = value.strip()
            if not value:
                continue
        merge[target] = value
    return {"email_address": email, "merge_fields": merge}


def check_targets(targets: Sequence[str], fields: Sequence[MergeField]) -> list[SettingError]:
    """Every merge tag of a mapping must be a merge field of the audience."""
    known = {f.tag for f in fields}
    names = ", ".join(sorted(known)) or "none"
    return [
        SettingError(
            target,
            f"the audience has no merge field {target!r} (its merge fields: {names})",
            "UNKNOWN_MERGE_FIELD",
        )
        for target in targets
        if target != "email_address" and target not in known
    ]


def normalize_merge_fields(
    merge: Mapping[str, Any], fields: Mapping[str, MergeField]
) -> tuple[dict[str, Any], list[tuple[str, Invalid]]]:
    """Each value in the form its field's type needs; invalid ones left out, with
    ``(tag, why)`` warnings. A tag the audience no longer has is left out too."""
    normalized: dict[str, Any] = {}
    warnings: list[tuple[str, Invalid]] = []
    for tag, value in merge.items():
        spec = fields.get(tag)
        if spec is None:
            warnings.append((tag, Invalid("UNKNOWN_MERGE_FIELD", "the audience has no such "
                                          "merge field any more")))  # fmt: skip
            continue
        result = normalize_value(spec, value)
        if isinstance(result, Invalid):
            warnings.append((tag, result))
        else:
            normalized[tag] = result
    return normalized, warnings


def normalize_value(spec: MergeField, value: Any) -> Any:
    """The value as Mailchimp wants it for ``spec``'s type, or :class:`Invalid`."""
    kind = spec.type
    if kind == "text" and type(value) is str and len(value) <= TEXT_MAX_LENGTH:
        return value  # the common case; build_member has stripped it already
    if kind == "number":
        return _number(value)
    if kind == "address":
        return _address(value)
    if kind == "birthday":
        return _birthday(value)
    if kind == "date":
        return _date(value, str(spec.options.get("date_format") or "MM/DD/YYYY"))
    if isinstance(value, (dict, list, bool)):
        return Invalid("NOT_TEXT", f"the field takes text, not {type(value).__name__}")
    text = str(value).strip()
    if kind in ("url", "imageurl") and not text.startswith(("http://", "https://")):
        return Invalid("INVALID_URL", "the value is not an http(s) URL")
    if kind in ("radio", "dropdown"):
        choices = [str(c) for c in spec.options.get("choices") or []]
        if text not in choices:
            return Invalid("NOT_A_CHOICE", "the value is not one of the field's choices")
    if len(text) > TEXT_MAX_LENGTH:
        return Invalid("TOO_LONG", f"the value is longer than {TEXT_MAX_LENGTH} characters")
    return text


def _number(value: Any) -> Any:
    if isinstance(value, bool):
        return Invalid("INVALID_NUMBER", "a number is needed, not true or false")
    if isinstance(value, int | float):
        return value
    try:
        number = float(str(value).strip().replace(",", ""))
    except ValueError:
        return Invalid("INVALID_NUMBER", "the value is not a number")
    return int(number) if number.is_integer() else number


def _address(value: Any) -> Any:
    if not isinstance(value, Mapping):
        return Invalid(
            "INVALID_ADDRESS",
            "an address needs its parts (addr1, city, state, zip; addr2, country)",
        )
    parts = {p: str(value.get(p) or "").strip() for p in ADDRESS_PARTS}
    missing = [p for p in REQUIRED_ADDRESS_PARTS if not parts[p]]
    if missing:
        return Invalid("INVALID_ADDRESS", f"the address has no {', '.join(missing)}")
    return {p: v for p, v in parts.items() if v}


def _calendar(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    match = _ISO_DATE.match(str(value).strip())
    if match is None:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def _birthday(value: Any) -> Any:
    text = str(value).strip()
    match = _BIRTHDAY.match(text)
    if match is not None:
        month, day = int(match[1]), int(match[2])
        try:
            date(2000, month, day)  # a leap year: 02/29 is a birthday
        except ValueError:
            return Invalid("INVALID_BIRTHDAY", "the value is not a month and day (MM/DD)")
        return f"{month:02d}/{day:02d}"
    found = _calendar(value)
    if found is None:
        return Invalid("INVALID_BIRTHDAY", "the value is not a birthday (MM/DD or a date)")
    return f"{found.month:02d}/{found.day:02d}"


def _date(value: Any, date_format: str) -> Any:
    pattern = date_format.upper().replace("MM", "%m").replace("DD", "%d").replace("YYYY", "%Y")
    found = _calendar(value)
    if found is None:
        try:
            found = datetime.strptime(str(value).strip(), pattern).date()
        except ValueError:
            return Invalid("INVALID_DATE", f"the value is not a date (YYYY-MM-DD or {date_format})")
    return found.strftime(pattern)
