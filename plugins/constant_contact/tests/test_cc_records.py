"""How mapped profile values become Constant Contact contacts: every field rule."""

from __future__ import annotations

import datetime as dt

import orjson
import pytest
from email_validator import validate_email
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from segport_constant_contact import ConstantContact, fields
from segport_constant_contact.session import BODY_PREFIX, body_suffix

from service.plugins import Rejection

CC = ConstantContact()


def build(**values: object) -> dict[str, object] | Rejection:
    return CC.build_record({"email": "ana@example.com", **values})


def rejected(result: object, code: str, field: str) -> Rejection:
    assert isinstance(result, Rejection), result
    assert (result.code, result.field) == (code, field), result
    return result


def test_email_is_stripped_and_kept_in_its_case_while_the_dedupe_key_is_lower_case() -> None:
    record = CC.build_record({"email": "  Ana.Ivanova@Example.COM \n"})
    assert record == {"email": "Ana.Ivanova@Example.COM"}
    assert CC.record_dedupe_key(record) == "ana.ivanova@example.com"


def test_missing_or_blank_email_is_refused_as_missing() -> None:
    rejected(CC.build_record({}), "MISSING_REQUIRED", "email")
    rejected(CC.build_record({"email": "   "}), "MISSING_REQUIRED", "email")


def test_malformed_email_is_refused_naming_the_value() -> None:
    result = rejected(CC.build_record({"email": "ana@@example"}), "EMAIL_INVALID", "email")
    assert "'ana@@example'" in result.message


def test_email_over_50_characters_is_refused_never_shortened() -> None:
    long_email = "a" * 39 + "@example.com"  # 51 characters
    result = rejected(CC.build_record({"email": long_email}), "TOO_LONG", "email")
    assert "51 characters" in result.message
    fifty = "a" * 38 + "@example.com"
    assert CC.build_record({"email": fifty}) == {"email": fifty}


def test_names_job_title_and_company_are_trimmed_to_50_characters() -> None:
    record = build(first_name="  " + "F" * 60, last_name="Ivanova", job_title="J" * 51,
                   company_name="C" * 50)  # fmt: skip
    assert isinstance(record, dict)
    assert record["first_name"] == "F" * 50
    assert record["last_name"] == "Ivanova"
    assert record["job_title"] == "J" * 50
    assert record["company_name"] == "C" * 50


def test_blank_optional_values_are_left_out() -> None:
    assert build(first_name="  ", last_name=None, city="") == {"email": "ana@example.com"}


def test_non_text_values_are_refused_naming_the_field() -> None:
    result = rejected(build(first_name={"x": 1}), "VALUE_INVALID", "first_name")
    assert "dict" in result.message
    rejected(build(city=True), "VALUE_INVALID", "city")


def test_numbers_become_text_for_text_fields() -> None:
    assert build(zip=10115) == {"email": "ana@example.com", "zip": "10115"}


def test_birthday_month_and_day_are_integers_given_together() -> None:
    assert build(birthday_month="7", birthday_day=14.0) == {
        "email": "ana@example.com",
        "birthday_month": 7,
        "birthday_day": 14,
    }
    rejected(build(birthday_month=7), "BIRTHDAY_INCOMPLETE", "birthday_day")
    rejected(build(birthday_day=7), "BIRTHDAY_INCOMPLETE", "birthday_month")


@pytest.mark.parametrize(
    ("month", "day", "field"),
    [(13, 1, "birthday_month"), (0, 1, "birthday_month"), (1, 32, "birthday_day"),
     (2, 30, "birthday_day"), ("July", 1, "birthday_month"), (1, 1.5, "birthday_day")],
)  # fmt: skip
def test_birthday_out_of_range_is_refused(month: object, day: object, field: str) -> None:
    rejected(build(birthday_month=month, birthday_day=day), "VALUE_INVALID", field)


def test_leap_day_birthday_is_accepted() -> None:
    record = build(birthday_month=2, birthday_day=29)
    assert isinstance(record, dict)
    assert (record["birthday_month"], record["birthday_day"]) == (2, 29)


def test_anniversary_is_normalized_to_iso_date() -> None:
    assert build(anniversary="2019-06-01")["anniversary"] == "2019-06-01"  # type: ignore[index]
    assert build(anniversary=dt.date(2019, 6, 1))["anniversary"] == "2019-06-01"  # type: ignore[index]
    stamped = build(anniversary="2019-06-01T10:00:00Z")
    assert stamped["anniversary"] == "2019-06-01"  # type: ignore[index]
    result = rejected(build(anniversary="June 1st"), "DATE_INVALID", "anniversary")
    assert "'June 1st'" in result.message


def test_phone_over_25_characters_is_refused_not_cut() -> None:
    rejected(build(phone="+1 555 0100 " * 3), "TOO_LONG", "phone")


def test_at_most_three_phones() -> None:
    three = {"phone": "1", "home_phone": "2", "work_phone": "3"}
    assert isinstance(build(**three), dict)
    rejected(build(**three, mobile_phone="4"), "TOO_MANY_PHONES", "phone")


def test_address_variants_are_sent_under_their_prefixed_names() -> None:
    record = build(street="1 Main St", city="Berlin", home_zip="10115", work_country="DE")
    assert record == {
        "email": "ana@example.com",
        "street": "1 Main St",
        "city": "Berlin",
        "home_zip": "10115",
        "work_country": "DE",
    }


def test_at_most_three_addresses() -> None:
    result = build(city="A", home_city="B", work_city="C", other_city="D")
    rejected(result, "TOO_MANY_ADDRESSES", "street")


def test_city_over_50_characters_is_refused() -> None:
    rejected(build(home_city="X" * 51), "TOO_LONG", "home_city")


def test_custom_fields_are_sent_with_their_cf_prefix() -> None:
    assert build(**{"cf:shoe_size": " 42 "}) == {"email": "ana@example.com", "cf:shoe_size": "42"}


def test_custom_field_value_over_255_characters_is_refused() -> None:
    rejected(build(**{"cf:notes": "n" * 256}), "TOO_LONG", "cf:notes")
    assert isinstance(build(**{"cf:notes": "n" * 255}), dict)


def test_at_most_25_custom_fields_per_contact() -> None:
    custom = {f"cf:f{i}": "x" for i in range(25)}
    assert isinstance(build(**custom), dict)
    rejected(build(**custom, **{"cf:f25": "x"}), "TOO_MANY_CUSTOM_FIELDS", "cf:")


def test_permission_fields_are_never_produced() -> None:
    record = build(first_name="Ana")
    assert isinstance(record, dict)
    assert not any("permission" in key for key in record)


def test_mapping_accepts_custom_fields_but_not_unknown_targets() -> None:
    assert CC.validate_mapping(["email", "first_name", "cf:tier"]) == []
    errors = CC.validate_mapping(["email", "favourite_colour", "cf:"])
    assert [(e.field, e.code) for e in errors] == [
        ("favourite_colour", "UNKNOWN_TARGET"),
        ("cf:", "UNKNOWN_TARGET"),
    ]


def test_mapping_requires_email() -> None:
    assert [e.code for e in CC.validate_mapping(["first_name"])] == ["REQUIRED_TARGET"]


def test_mapping_more_than_25_custom_fields_is_refused() -> None:
    errors = CC.validate_mapping(["email", *(f"cf:f{i}" for i in range(26))])
    assert [(e.field, e.code) for e in errors] == [("cf:f25", "TOO_MANY")]


def test_list_id_must_be_a_uuid() -> None:
    assert CC.validate_export_settings({"listId": "07936f78-662a-11eb-af0a-fa163e56c9b0"}) == []
    errors = CC.validate_export_settings({"listId": "my list"})
    assert [e.field for e in errors] == ["listId"]
    assert "'my list'" in errors[0].message
    assert [e.code for e in CC.validate_export_settings({})] == ["REQUIRED"]


def test_envelope_size_is_the_exact_bytes_around_the_records() -> None:
    list_id = "07936f78-662a-11eb-af0a-fa163e56c9b0"
    records = [CC.encode_record({"email": f"p{i}@example.com"}) for i in range(3)]
    body = BODY_PREFIX + b",".join(records) + body_suffix(list_id)
    expected = CC.batch_envelope_size({"listId": list_id}) + sum(map(len, records)) + 2
    assert len(body) == expected
    assert orjson.loads(body)["list_ids"] == [list_id]


def test_declared_limits_keep_every_body_under_4_mb() -> None:
    limits = CC.limits
    assert limits.batch_max_records == 40_000
    assert limits.batch_max_bytes <= 4_000_000
    assert (limits.requests_per_second, limits.requests_per_day) == (4, 10_000)
    assert limits.max_profiles_per_export == 1_000_000


@settings(
    max_examples=300, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck)
)
@given(st.from_regex(fields._PLAIN_EMAIL, fullmatch=True).filter(lambda t: len(t) <= 50))
def test_the_fast_e_mail_path_accepts_only_what_email_validator_accepts(address: str) -> None:
    if fields._plainly_valid(address):
        validate_email(address, check_deliverability=False)  # raises if the fast path lied


@pytest.mark.parametrize(
    ("address", "valid"),
    [
        ("ana@example.com", True),
        ("o'neil+tag@mail.example.co.uk", True),
        ("josé@example.com", True),  # not plain ASCII: decided by the full validator
        ("ana@ab--cd.com", False),  # IDNA hyphen rule, left to the full validator
        ("ana@printer.local", False),  # special-use domain
        ("ana@example.c1", False),
        ("ana..b@example.com", False),
        ("ana@-example.com", False),
    ],
)
def test_e_mail_verdicts_match_the_full_validator(address: str, valid: bool) -> None:
    result = build(email=address)
    if valid:
        assert isinstance(result, dict)
        assert result["email"] == address
    else:
        rejected(result, "EMAIL_INVALID", "email")
