"""Constant Contact's contact fields: the mapping targets and how a mapped profile becomes
the contact sent in a JSON import.

Every rule is in docs/constant-contact.md ("Contact fields"), taken from the published
description's ``createImportJSONActivity_request_import_data_inner`` schema. Only the
e-mail can keep a contact out of an import (missing or invalid: a :class:`Rejection`).
An optional value that cannot be sent as it is, and cannot be normalized into a
documented format without changing its meaning, is left out of that contact and
reported as a :class:`FieldWarning`: the contact still goes, without that value.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from service.plugins import FieldWarning, MappingTarget, Rejection

EMAIL_MAX = 50
NAME_MAX = 50
PHONE_MAX = 50
"""A JSON import's phones may hold 50 characters (published schema)."""
STREET_MAX = 255
ADDRESS_PART_MAX = 50
SMS_MAX = 16
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
HOME_COUNTRY = "home_country"
"""The published schema spells this one ``home country`` (a space): neither spelling is
valid under every reading, so its value is sent as the primary ``country`` (whose
default kind is home) when that is free, else left out with a warning."""


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _mapping_targets() -> tuple[MappingTarget, ...]:
    targets = [MappingTarget("email", "E-mail address", True, EMAIL_MAX, "email")]
    targets += [MappingTarget(name, _label(name), False, NAME_MAX) for name in TRIMMABLE]
    targets += [
        MappingTarget("birthday_month", "Birthday month (1-12)", False, None, "integer"),
        MappingTarget("birthday_day", "Birthday day (1-31)", False, None, "integer"),
        MappingTarget("anniversary", "Anniversary (a date)", False, None, "date"),
    ]
    targets += [MappingTarget(name, _label(name), False, PHONE_MAX, "phone") for name in PHONES]
    for prefix in ADDRESS_PREFIXES:
        for part, max_length in ADDRESS_PARTS.items():
            name = prefix + part
            targets.append(MappingTarget(name, _label(name), False, max_length))
    targets.append(MappingTarget("sms_number", "SMS number (US)", False, SMS_MAX, "phone"))
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
    """A value quoted for a rejection, shortened so a huge value cannot flood a log."""
    return repr(value if len(value) <= limit else value[:limit] + "...")


class _Refused(Exception):
    def __init__(self, code: str, message: str, field: str) -> None:
        super().__init__(message)
        self.rejection = Rejection(code, message, field)


class _LeftOut(Exception):
    """An optional value that cannot be sent: the contact goes without it."""

    def __init__(self, field: str, code: str, reason: str) -> None:
        super().__init__(reason)
        self.warning = FieldWarning(field, code, reason)


def _text(field: str, value: Any) -> str | None:
    """A value as stripped text; None when blank. Numbers become text (a ZIP held as a number)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _LeftOut(field, "VALUE_INVALID", f"{field} must be text, not {type(value).__name__}")
    text = value.strip() if isinstance(value, str) else str(value)
    return text or None


def _bounded(field: str, value: Any, max_length: int) -> str | None:
    text = _text(field, value)
    if text is not None and len(text) > max_length:
        raise _LeftOut(
            field, "TOO_LONG", f"{field} is {len(text)} characters; at most {max_length} allowed"
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
    if value is not None and (isinstance(value, bool) or not isinstance(value, str | int | float)):
        raise _Refused("EMAIL_INVALID", f"email must be text, not {type(value).__name__}", "email")
    text = (value.strip() if isinstance(value, str) else str(value)) if value is not None else ""
    if not text:
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


def _whole_number(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _birthday(values: Mapping[str, Any], contact: dict[str, Any]) -> None:
    raw_month, raw_day = values.get("birthday_month"), values.get("birthday_day")
    if _blank(raw_month) and _blank(raw_day):
        return
    if _blank(raw_month) or _blank(raw_day):
        missing = "birthday_month" if _blank(raw_month) else "birthday_day"
        raise _LeftOut(
            missing,
            "BIRTHDAY_INCOMPLETE",
            f"birthday_month and birthday_day are only accepted together; {missing} has no value",
        )
    month, day = _whole_number(raw_month), _whole_number(raw_day)
    if month is None or not 1 <= month <= 12:
        raise _LeftOut("birthday_month", "VALUE_INVALID", "birthday_month must be 1 to 12")
    # 29 February is a valid birthday; a year is never sent.
    last = (dt.date(2000, month % 12 + 1, 1) - dt.timedelta(days=1)).day
    if day is None or not 1 <= day <= last:
        raise _LeftOut(
            "birthday_day", "VALUE_INVALID", f"birthday_day must be 1 to {last} in month {month}"
        )
    contact["birthday_month"] = month
    contact["birthday_day"] = day


_YEAR_FIRST = re.compile(r"(\d{4})([/-])(\d{1,2})\2(\d{1,2})")
_MONTH_FIRST = re.compile(r"(\d{1,2})([/-])(\d{1,2})\2(\d{4})")


def normalize_date(field: str, value: Any) -> str | None:
    """A date in one of the published formats (``MM/DD/YYYY``, ``M/D/YYYY``, ``YYYY/MM/DD``,
    ``YYYY/M/D``, ``YYYY-MM-DD``, ``YYYY-M-D``, ``M-D-YYYY``, ``M-DD-YYYY``), an ISO
    timestamp or a date object, as ``YYYY-MM-DD`` (itself a published format)."""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    text = _text(field, value)
    if text is None:
        return None
    if "T" in text and _YEAR_FIRST.match(text):  # an ISO timestamp: its date
        text = text.partition("T")[0]
    parts: tuple[str, str, str] | None = None
    if found := _YEAR_FIRST.fullmatch(text):
        parts = (found[1], found[3], found[4])
    elif found := _MONTH_FIRST.fullmatch(text):
        # Month first, as every published month-first format is (US order).
        parts = (found[4], found[1], found[3])
    if parts is None:
        raise _LeftOut(
            field, "DATE_INVALID", f"{field} is in no date format Constant Contact takes"
        )
    try:
        return dt.date(int(parts[0]), int(parts[1]), int(parts[2])).isoformat()
    except ValueError:
        raise _LeftOut(field, "DATE_INVALID", f"{field} is not a real date") from None


_SMS_PUNCTUATION = re.compile(r"[\s().+-]")


def normalize_sms_number(value: Any) -> str | None:
    """A US number as the published ``1231231234`` format; ``+1`` and common punctuation
    (spaces, dots, dashes, parentheses) are accepted and removed."""
    text = _text("sms_number", value)
    if text is None:
        return None
    digits = _SMS_PUNCTUATION.sub("", text)
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    if len(digits) != 10 or not digits.isdigit():
        raise _LeftOut(
            "sms_number", "SMS_INVALID", "sms_number is not a 10-digit US number (1231231234)"
        )
    return digits


_TRIM, _PHONE, _ADDRESS, _SMS, _BIRTHDAY, _ANNIVERSARY, _HOME_COUNTRY = range(7)
_RULES: dict[str, tuple[int, int, str]] = {
    **dict.fromkeys(TRIMMABLE, (_TRIM, NAME_MAX, "")),
    **dict.fromkeys(PHONES, (_PHONE, PHONE_MAX, "")),
    **{
        prefix + part: (_ADDRESS, max_length, prefix)
        for prefix in ADDRESS_PREFIXES
        for part, max_length in ADDRESS_PARTS.items()
    },
    HOME_COUNTRY: (_HOME_COUNTRY, ADDRESS_PART_MAX, "home_"),
    "sms_number": (_SMS, SMS_MAX, ""),
    "birthday_month": (_BIRTHDAY, 0, ""),
    "birthday_day": (_BIRTHDAY, 0, ""),
    "anniversary": (_ANNIVERSARY, 0, ""),
}
"""Every standard field but e-mail: (kind, maximum length, address prefix)."""


def _address_kind(prefix: str) -> str:
    return prefix.rstrip("_") or "primary"


def build_contact(
    values: Mapping[str, Any],
) -> tuple[dict[str, Any] | Rejection, list[FieldWarning]]:
    """The contact for a JSON import from mapped values (or why the e-mail keeps it out),
    and the optional values left out of it.

    Only the values present are visited (a run maps a handful of the ~40 targets).
    Permission fields are never produced: an unsubscribed contact must stay unsubscribed.
    """
    try:
        contact: dict[str, Any] = {"email": _email(values.get("email"))}
    except _Refused as refused:
        return refused.rejection, []
    warnings: list[FieldWarning] = []
    phones: list[str] = []
    addresses: dict[str, list[str]] = {}
    custom: list[str] = []
    birthday = False
    for name, value in values.items():
        try:
            rule = _RULES.get(name)
            if rule is None:
                if name == "email":
                    continue
                if not is_custom_field(name):
                    raise _LeftOut(name, "UNKNOWN_FIELD", f"{name} is not a Constant Contact field")
                text = _bounded(name, value, CUSTOM_FIELD_VALUE_MAX)
                if text is not None:
                    contact[name] = text
                    custom.append(name)
                continue
            kind, max_length, prefix = rule
            if kind == _BIRTHDAY:
                birthday = True
            elif kind == _ANNIVERSARY:
                anniversary = normalize_date(name, value)
                if anniversary is not None:
                    contact["anniversary"] = anniversary
            elif kind == _SMS:
                number = normalize_sms_number(value)
                if number is not None:
                    contact["sms_number"] = number
            elif kind == _TRIM:
                text = _text(name, value)
                if text is not None:
                    if len(text) > max_length:
                        warnings.append(
                            FieldWarning(
                                name,
                                "TRIMMED",
                                f"{name} is {len(text)} characters; cut to {max_length}",
                            )
                        )
                    contact[name] = text[:max_length].rstrip()
            else:
                text = _bounded(name, value, max_length)
                if text is None:
                    continue
                if kind == _PHONE:
                    phones.append(name)
                    contact[name] = text
                else:
                    addresses.setdefault(prefix, []).append(name)
                    contact[name] = text
        except _LeftOut as left_out:
            warnings.append(left_out.warning)
    if birthday:
        try:
            _birthday(values, contact)
        except _LeftOut as left_out:
            warnings.append(left_out.warning)
    if HOME_COUNTRY in contact:
        home_country = contact.pop(HOME_COUNTRY)
        if "country" in contact:
            warnings.append(
                FieldWarning(
                    HOME_COUNTRY,
                    "NOT_SENDABLE",
                    "home_country can only be sent as the primary country, which is mapped too",
                )
            )
            addresses["home_"].remove(HOME_COUNTRY)
            if not addresses["home_"]:
                del addresses["home_"]
        else:
            contact["country"] = home_country
            addresses.setdefault("", []).append("country")
            addresses["home_"].remove(HOME_COUNTRY)
            if not addresses["home_"]:
                del addresses["home_"]
    for extra in phones[MAX_PHONES:]:
        del contact[extra]
        warnings.append(
            FieldWarning(extra, "TOO_MANY_PHONES", f"only {MAX_PHONES} phones are kept")
        )
    for prefix in list(addresses)[MAX_ADDRESSES:]:
        for name in addresses[prefix]:
            del contact[name]
            warnings.append(
                FieldWarning(
                    name,
                    "TOO_MANY_ADDRESSES",
                    f"only {MAX_ADDRESSES} addresses are kept; the {_address_kind(prefix)} "
                    "address is left out",
                )
            )
    for extra in custom[MAX_CUSTOM_FIELDS:]:
        del contact[extra]
        warnings.append(
            FieldWarning(
                extra, "TOO_MANY_CUSTOM_FIELDS", f"only {MAX_CUSTOM_FIELDS} custom fields are kept"
            )
        )
    return contact, warnings


# The keys the published import schema allows in one contact: what the fake accepts and
# what a test checks every body against. ``cf:<name>`` keys are checked separately.
CONTACT_KEYS = frozenset(
    {"email", *TRIMMABLE, "birthday_month", "birthday_day", "anniversary", *PHONES}
    | {prefix + part for prefix in ADDRESS_PREFIXES for part in ADDRESS_PARTS}
    | {"sms_number", "sms_consent_date"}
) - {HOME_COUNTRY} | {"home country"}
