"""Constant Contact's contact fields: the mapping targets and how a mapped profile becomes
the contact sent in a JSON import (normalized, or refused with a :class:`Rejection`).

Rules come from the fact sheet (docs/constant-contact-v3.md): e-mail required and at most
50 characters; names, job title and company at most 50; ``birthday_month`` (1-12) and
``birthday_day`` (1-31) only together; ``anniversary`` a date; up to 3 phones and 3
addresses; custom fields ``cf:<name>``, at most 25 per contact, values at most 255.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from service.plugins import MappingTarget, Rejection

EMAIL_MAX = 50
NAME_MAX = 50
PHONE_MAX = 25
"""Not in the fact sheet; Constant Contact's phone_number schema allows 25 characters."""
STREET_MAX = 255
ADDRESS_PART_MAX = 50
CUSTOM_FIELD_PREFIX = "cf:"
CUSTOM_FIELD_VALUE_MAX = 255
MAX_CUSTOM_FIELDS = 25
MAX_PHONES = 3
MAX_ADDRESSES = 3

# Fields that may be cut to their maximum length: a shortened name still reaches the
# right person, whereas a shortened e-mail, phone or street would be a different one.
TRIMMABLE = ("first_name", "last_name", "job_title", "company_name")
PHONES = ("phone", "home_phone", "work_phone", "mobile_phone", "other_phone")
ADDRESS_PARTS = {
    "street": STREET_MAX,
    "street2": STREET_MAX,
    "city": ADDRESS_PART_MAX,
    "state": ADDRESS_PART_MAX,
    "zip": ADDRESS_PART_MAX,
    "country": ADDRESS_PART_MAX,
}
ADDRESS_PREFIXES = ("", "home_", "work_", "other_")
SMS_MAX = 25


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _mapping_targets() -> tuple[MappingTarget, ...]:
    targets = [MappingTarget("email", "E-mail address", True, EMAIL_MAX, "email")]
    targets += [MappingTarget(name, _label(name), False, NAME_MAX) for name in TRIMMABLE]
    targets += [
        MappingTarget("birthday_month", "Birthday month (1-12)", False, None, "integer"),
        MappingTarget("birthday_day", "Birthday day (1-31)", False, None, "integer"),
        MappingTarget("anniversary", "Anniversary (YYYY-MM-DD)", False, None, "date"),
    ]
    targets += [MappingTarget(name, _label(name), False, PHONE_MAX, "phone") for name in PHONES]
    for prefix in ADDRESS_PREFIXES:
        for part, max_length in ADDRESS_PARTS.items():
            name = prefix + part
            targets.append(MappingTarget(name, _label(name), False, max_length))
    targets.append(MappingTarget("sms_number", "SMS number", False, SMS_MAX, "phone"))
    return tuple(targets)


MAPPING_TARGETS = _mapping_targets()
_TARGET_BY_NAME = {t.name: t for t in MAPPING_TARGETS}


def is_custom_field(target: str) -> bool:
    return target.startswith(CUSTOM_FIELD_PREFIX) and bool(
        target[len(CUSTOM_FIELD_PREFIX) :].strip()
    )


def is_known_target(target: str) -> bool:
    return target in _TARGET_BY_NAME or is_custom_field(target)


def _shown(value: str, limit: int = 60) -> str:
    """A value quoted for an error message, shortened so a huge value cannot flood a log."""
    return repr(value if len(value) <= limit else value[:limit] + "...")


class _Refused(Exception):
    def __init__(self, code: str, message: str, field: str) -> None:
        super().__init__(message)
        self.rejection = Rejection(code, message, field)


def _text(field: str, value: Any) -> str | None:
    """A value as stripped text; None when blank. Numbers become text (a ZIP held as a number)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _Refused("VALUE_INVALID", f"{field} must be text, not {type(value).__name__}", field)
    text = value.strip() if isinstance(value, str) else str(value)
    return text or None


def _bounded(field: str, value: Any, max_length: int) -> str | None:
    text = _text(field, value)
    if text is not None and len(text) > max_length:
        raise _Refused(
            "TOO_LONG",
            f"{field} {_shown(text)} is {len(text)} characters; at most {max_length} allowed",
            field,
        )
    return text


_PLAIN_EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)
"""Plain ASCII addresses (dot-atom local part, LDH labels, alphabetic TLD): a strict subset
of what email-validator accepts (a property test checks it), so that the common case
skips the full validator, which costs more than everything else a run does per contact."""


def _plainly_valid(text: str) -> bool:
    if _PLAIN_EMAIL.fullmatch(text) is None:
        return False
    domain = text.rpartition("@")[2]
    # Hyphen pairs (IDNA rules, Punycode) and special-use names go to the full validator.
    return "--" not in domain and domain.rpartition(".")[2].lower() not in SPECIAL_USE_DOMAIN_NAMES


def _email(value: Any) -> str:
    text = _text("email", value)
    if text is None:
        raise _Refused("MISSING_REQUIRED", "email is required", "email")
    if len(text) > EMAIL_MAX:
        # Never shorten an e-mail: a cut address is someone else's (or nobody's).
        raise _Refused(
            "TOO_LONG",
            f"email {_shown(text)} is {len(text)} characters; at most {EMAIL_MAX} allowed",
            "email",
        )
    if _plainly_valid(text):
        return text
    try:
        validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise _Refused(
            "EMAIL_INVALID", f"email {_shown(text)} is not a valid address: {exc}", "email"
        ) from None
    return text


def _integer(field: str, value: Any, low: int, high: int) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    if number is None or not low <= number <= high:
        raise _Refused(
            "VALUE_INVALID", f"{field} {value!r} must be a whole number from {low} to {high}", field
        )
    return number


def _anniversary(value: Any) -> str | None:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    text = _text("anniversary", value)
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text[:10] if "T" in text else text).isoformat()
    except ValueError:
        raise _Refused(
            "DATE_INVALID",
            f"anniversary {_shown(text)} is not a date (expected YYYY-MM-DD)",
            "anniversary",
        ) from None


def _birthday(values: Mapping[str, Any], contact: dict[str, Any]) -> None:
    month = _integer("birthday_month", values.get("birthday_month"), 1, 12)
    day = _integer("birthday_day", values.get("birthday_day"), 1, 31)
    if (month is None) != (day is None):
        missing = "birthday_day" if day is None else "birthday_month"
        raise _Refused(
            "BIRTHDAY_INCOMPLETE",
            f"birthday_month and birthday_day are only accepted together; {missing} has no value",
            missing,
        )
    if month is not None and day is not None:
        # 29 February is a valid birthday; a year is never sent.
        last = (dt.date(2000, month % 12 + 1, 1) - dt.timedelta(days=1)).day
        if day > last:
            raise _Refused(
                "VALUE_INVALID", f"birthday {month}/{day} does not exist", "birthday_day"
            )
        contact["birthday_month"] = month
        contact["birthday_day"] = day


_TRIM, _PHONE, _ADDRESS, _SMS, _BIRTHDAY, _ANNIVERSARY = range(6)
_RULES: dict[str, tuple[int, int, str]] = {
    **dict.fromkeys(TRIMMABLE, (_TRIM, NAME_MAX, "")),
    **dict.fromkeys(PHONES, (_PHONE, PHONE_MAX, "")),
    **{
        prefix + part: (_ADDRESS, max_length, prefix)
        for prefix in ADDRESS_PREFIXES
        for part, max_length in ADDRESS_PARTS.items()
    },
    "sms_number": (_SMS, SMS_MAX, ""),
    "birthday_month": (_BIRTHDAY, 0, ""),
    "birthday_day": (_BIRTHDAY, 0, ""),
    "anniversary": (_ANNIVERSARY, 0, ""),
}
"""Every standard field but e-mail: (kind, maximum length, address prefix)."""


def build_contact(values: Mapping[str, Any]) -> dict[str, Any] | Rejection:
    """The contact for a JSON import from mapped values, or a rule it breaks.

    Only the values present are visited (a run maps a handful of the ~40 targets).
    Permission fields are never produced: an unsubscribed contact must stay unsubscribed.
    """
    try:
        contact: dict[str, Any] = {"email": _email(values.get("email"))}
        phones = custom = 0
        addresses: set[str] = set()
        birthday = False
        for name, value in values.items():
            rule = _RULES.get(name)
            if rule is None:
                if name == "email":
                    continue
                if not name.startswith(CUSTOM_FIELD_PREFIX):
                    raise _Refused("UNKNOWN_FIELD", f"unknown field {name!r}", name)
                if not is_custom_field(name):
                    raise _Refused("UNKNOWN_FIELD", f"custom field {name!r} has no name", name)
                text = _bounded(name, value, CUSTOM_FIELD_VALUE_MAX)
                if text is not None:
                    contact[name] = text
                    custom += 1
                continue
            kind, max_length, prefix = rule
            if kind == _BIRTHDAY:
                birthday = True
            elif kind == _ANNIVERSARY:
                anniversary = _anniversary(value)
                if anniversary is not None:
                    contact["anniversary"] = anniversary
            elif kind == _TRIM:
                text = _text(name, value)
                if text is not None:
                    contact[name] = text[:max_length].rstrip()
            else:
                text = _bounded(name, value, max_length)
                if text is not None:
                    contact[name] = text
                    phones += kind == _PHONE
                    if kind == _ADDRESS:
                        addresses.add(prefix)
        if birthday:
            _birthday(values, contact)
        if phones > MAX_PHONES:
            raise _Refused(
                "TOO_MANY_PHONES",
                f"{phones} phone numbers given; Constant Contact keeps at most {MAX_PHONES}",
                "phone",
            )
        if len(addresses) > MAX_ADDRESSES:
            raise _Refused(
                "TOO_MANY_ADDRESSES",
                f"{len(addresses)} addresses given; Constant Contact keeps at most {MAX_ADDRESSES}",
                "street",
            )
        if custom > MAX_CUSTOM_FIELDS:
            raise _Refused(
                "TOO_MANY_CUSTOM_FIELDS",
                f"{custom} custom fields given; at most {MAX_CUSTOM_FIELDS} per contact",
                "cf:",
            )
    except _Refused as refused:
        return refused.rejection
    return contact
