"""What the fake refuses in a JSON import's contacts, written from the published
description's import schema (docs/constant-contact.md, "Contact fields"), not from the
plugin's code, so that the two cannot agree by construction.

Two kinds of problems, as the description tells them apart:

- a contact that breaks the schema (an unknown property, a value over its
  ``maxLength``, a value of the wrong type, more than 3 phones or addresses or 25
  custom fields, an ``sms_number`` over 16, a custom field the account does not have)
  makes the whole request a 400 "data validation error";
- a bad e-mail, birthday or anniversary is a *correctable* error of that contact
  (``correctable_count``); a contact with neither e-mail nor SMS number is an error.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection
from typing import Any

MAX_LENGTH = {
    "email": 50,
    "first_name": 50,
    "last_name": 50,
    "job_title": 50,
    "company_name": 50,
    **dict.fromkeys(("phone", "home_phone", "work_phone", "mobile_phone", "other_phone"), 50),
    **{
        prefix + part: (255 if part.startswith("street") else 50)
        for prefix in ("", "home_", "work_", "other_")
        for part in ("street", "street2", "city", "state", "zip", "country")
        if prefix + part != "home_country"
    },
    "home country": 50,  # so spelled by the published schema
    "sms_number": 16,
    "sms_consent_date": 16,
    "anniversary": 10_000,  # no maxLength published; the format decides
}
INTEGERS = ("birthday_month", "birthday_day")
PHONES = ("phone", "home_phone", "work_phone", "mobile_phone", "other_phone")
ADDRESS_KINDS = {
    "": ("street", "street2", "city", "state", "zip", "country"),
    "home": ("home_street", "home_street2", "home_city", "home_state", "home_zip", "home country"),
    "work": tuple("work_" + p for p in ("street", "street2", "city", "state", "zip", "country")),
    "other": tuple("other_" + p for p in ("street", "street2", "city", "state", "zip", "country")),
}
CUSTOM_PREFIX = "cf:"
CUSTOM_MAX_LENGTH = 255
MAX_CUSTOM_FIELDS = 25
MAX_PHONES = 3
MAX_ADDRESSES = 3
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")  # a fake's notion of a valid address
DATE_FORMATS = (
    re.compile(r"(?P<m>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{4})"),  # MM/DD/YYYY, M/D/YYYY
    re.compile(r"(?P<y>\d{4})/(?P<m>\d{1,2})/(?P<d>\d{1,2})"),  # YYYY/MM/DD, YYYY/M/D
    re.compile(r"(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})"),  # YYYY-MM-DD, YYYY-M-D
    re.compile(r"(?P<m>\d{1,2})-(?P<d>\d{1,2})-(?P<y>\d{4})"),  # M-D-YYYY, M-DD-YYYY
)
SMS_RE = re.compile(r"\d{10}|\d{3}-\d{3}-\d{4}")
ADDRESS_KIND_OF = {part: kind for kind, parts in ADDRESS_KINDS.items() for part in parts}
"""Which address a property belongs to (one look-up per property, not per kind)."""
STRING_RULES = {
    key: (limit, key in PHONES, ADDRESS_KIND_OF.get(key)) for key, limit in MAX_LENGTH.items()
}
"""Each string property's rule in one look-up: (maxLength, a phone?, the address it is
part of or None)."""


def schema_problem(contact: Any, custom_fields: Collection[str]) -> str | None:
    """Why ``contact`` breaks the import schema (the request is refused), or None."""
    if not isinstance(contact, dict):
        return "a contact must be an object"
    custom = phones = 0
    addresses: set[str] | None = None
    for key, value in contact.items():
        rule = STRING_RULES.get(key)
        if rule is not None:
            limit, phone, address = rule
            if not isinstance(value, str):
                return f"{key} must be a string"
            if len(value) > limit:
                return f"{key} is longer than {limit} characters"
            if phone:
                phones += 1
            elif address is not None:
                if addresses is None:
                    addresses = set()
                addresses.add(address)
        elif key.startswith(CUSTOM_PREFIX):
            name = key[len(CUSTOM_PREFIX) :]
            if name not in custom_fields:
                return f"custom field {name!r} does not exist in this account"
            if not isinstance(value, str) or len(value) > CUSTOM_MAX_LENGTH:
                return f"{key} must be a string of at most {CUSTOM_MAX_LENGTH} characters"
            custom += 1
        elif key in INTEGERS:
            if isinstance(value, bool) or not isinstance(value, int):
                return f"{key} must be an integer"
        else:
            return f"unknown property {key!r}"
    if custom > MAX_CUSTOM_FIELDS:
        return f"{custom} custom fields; at most {MAX_CUSTOM_FIELDS} allowed"
    if phones > MAX_PHONES:
        return f"more than {MAX_PHONES} phone numbers"
    if addresses is not None and len(addresses) > MAX_ADDRESSES:
        return f"more than {MAX_ADDRESSES} addresses"
    sms = contact.get("sms_number")
    if sms is not None and not SMS_RE.fullmatch(sms):
        return "sms_number must be a US number such as 1231231234 or 123-123-1234"
    return None


def _real_date(text: Any) -> bool:
    if not isinstance(text, str):
        return False
    for pattern in DATE_FORMATS:
        found = pattern.fullmatch(text)
        if found:
            try:
                dt.date(int(found["y"]), int(found["m"]), int(found["d"]))
            except ValueError:
                return False
            return True
    return False


def contact_problem(contact: dict[str, Any]) -> tuple[str | None, bool]:
    """What the import refuses in one (schema-valid) contact, and whether Constant Contact
    counts it as correctable (e-mail, birthday or anniversary format) or as an error."""
    email = contact.get("email")
    if not email and not contact.get("sms_number"):
        return "email or sms_number is required", False
    if email and not EMAIL_RE.match(email):
        return f"invalid email address {email!r}", True
    anniversary = contact.get("anniversary")
    if anniversary is not None and not _real_date(anniversary):
        return f"invalid anniversary date {anniversary!r}", True
    month, day = contact.get("birthday_month"), contact.get("birthday_day")
    if (month is None) != (day is None):
        return "birthday_month and birthday_day must be given together", True
    if month is not None and day is not None:
        try:
            dt.date(2000, month, day)  # a leap year: 2/29 exists
        except ValueError:
            return f"invalid birthday {month!r}/{day!r}", True
    return None, False
