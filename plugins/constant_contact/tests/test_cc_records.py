"""How mapped profile values become Constant Contact contacts: every field rule of
docs/constant-contact.md ("Contact fields"). Only the e-mail keeps a contact out; an
optional value that cannot be sent is left out with a field warning."""

from __future__ import annotations

import datetime as dt

import orjson
import pytest
from email_validator import validate_email
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from segport_constant_contact import ConstantContact, fields
from segport_constant_contact.session import BODY_PREFIX, body_suffix

from service.plugins import FieldWarning, Rejection

CC = ConstantContact()


def build(**values: object) -> dict[str, object] | Rejection:
    return CC.build_record({"email": "ana@example.com", **values})


def left_out(values: dict[str, object], field: str, code: str) -> dict[str, object]:
    """The contact built from ``values`` (with an e-mail) lacks ``field``, and one warning
    names it with ``code``; the warning never holds the value."""
    record, warnings = CC.build_record_with_warnings({"email": "ana@example.com", **values})
    assert isinstance(record, dict), record
    assert field not in record
    assert [(w.field, w.code) for w in warnings] == [(field, code)], warnings
    for value in values.values():
        if isinstance(value, str) and len(value) > 3:
            assert value not in warnings[0].reason
    return record


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


def test_names_job_title_and_company_are_cut_to_50_characters() -> None:
    record = build(first_name="  " + "F" * 60, last_name="Ivanova", job_title="J" * 51,
                   company_name="C" * 50)  # fmt: skip
    assert isinstance(record, dict)
    assert record["first_name"] == "F" * 50
    assert record["last_name"] == "Ivanova"
    assert record["job_title"] == "J" * 50
    assert record["company_name"] == "C" * 50


def test_blank_optional_values_are_left_out() -> None:
    assert build(first_name="  ", last_name=None, city="") == {"email": "ana@example.com"}


def test_non_text_values_are_left_out_with_a_warning_naming_the_field() -> None:
    left_out({"first_name": {"x": 1}}, "first_name", "VALUE_INVALID")
    left_out({"city": True}, "city", "VALUE_INVALID")


def test_a_non_text_e_mail_is_refused() -> None:
    rejected(CC.build_record({"email": ["a@example.com"]}), "EMAIL_INVALID", "email")


def test_numbers_become_text_for_text_fields() -> None:
    assert build(zip=10115) == {"email": "ana@example.com", "zip": "10115"}


def test_birthday_month_and_day_are_integers_given_together() -> None:
    assert build(birthday_month="7", birthday_day=14.0) == {
        "email": "ana@example.com",
        "birthday_month": 7,
        "birthday_day": 14,
    }
    record = left_out({"birthday_month": 7}, "birthday_day", "BIRTHDAY_INCOMPLETE")
    assert "birthday_month" not in record
    left_out({"birthday_day": 7}, "birthday_month", "BIRTHDAY_INCOMPLETE")


@pytest.mark.parametrize(
    ("month", "day", "field"),
    [(13, 1, "birthday_month"), (0, 1, "birthday_month"), (1, 32, "birthday_day"),
     (2, 30, "birthday_day"), (2, 31, "birthday_day"), (4, 31, "birthday_day"),
     ("July", 1, "birthday_month"), (1, 1.5, "birthday_day")],
)  # fmt: skip
def test_an_impossible_birthday_is_left_out_and_the_contact_still_sent(
    month: object, day: object, field: str
) -> None:
    record = left_out({"birthday_month": month, "birthday_day": day}, field, "VALUE_INVALID")
    assert "birthday_month" not in record
    assert "birthday_day" not in record


def test_leap_day_birthday_is_accepted() -> None:
    record = build(birthday_month=2, birthday_day=29)
    assert isinstance(record, dict)
    assert (record["birthday_month"], record["birthday_day"]) == (2, 29)


@pytest.mark.parametrize(
    "written",
    ["06/01/2019", "6/1/2019", "2019/06/01", "2019/6/1", "2019-06-01", "2019-6-1", "6-1-2019",
     "6-01-2019", "06-01-2019", "2019-06-01T10:00:00Z", dt.date(2019, 6, 1),
     dt.datetime(2019, 6, 1, 10, 0)],
)  # fmt: skip
def test_anniversary_in_every_published_format_is_normalized(written: object) -> None:
    assert build(anniversary=written) == {"email": "ana@example.com", "anniversary": "2019-06-01"}


@pytest.mark.parametrize("written", ["June 1st", "2019-02-30", "13/01/2019", "01.06.2019", "2019"])
def test_anniversary_in_no_published_format_is_left_out(written: str) -> None:
    left_out({"anniversary": written}, "anniversary", "DATE_INVALID")


def test_names_over_50_characters_are_cut_with_a_warning() -> None:
    record, warnings = CC.build_record_with_warnings(
        {"email": "ana@example.com", "first_name": "F" * 60}
    )
    assert record == {"email": "ana@example.com", "first_name": "F" * 50}
    assert warnings == [
        FieldWarning("first_name", "TRIMMED", "first_name is 60 characters; cut to 50")
    ]


def test_phones_up_to_50_characters_are_sent_and_longer_ones_left_out() -> None:
    fifty = "+1 (555) 010-0100 ext. 1234567890 (ask for Ana) x1"
    assert len(fifty) == 50
    assert build(phone=fifty) == {"email": "ana@example.com", "phone": fifty}
    left_out({"phone": fifty + "0"}, "phone", "TOO_LONG")


def test_only_three_phones_are_kept() -> None:
    three = {"phone": "1", "home_phone": "2", "work_phone": "3"}
    assert isinstance(build(**three), dict)
    record = left_out({**three, "mobile_phone": "4"}, "mobile_phone", "TOO_MANY_PHONES")
    assert {k: record[k] for k in three} == three


@pytest.mark.parametrize(
    "written", ["1231231234", "123-123-1234", "(123) 123-1234", "+1 123 123 1234", "123.123.1234"]
)
def test_sms_numbers_in_us_formats_are_normalized_to_ten_digits(written: str) -> None:
    assert build(sms_number=written) == {"email": "ana@example.com", "sms_number": "1231231234"}


@pytest.mark.parametrize(
    "written", ["12345678901234567890", "+44 20 7946 0958", "555-0100", "12-3123-12345x"]
)
def test_sms_numbers_that_are_no_us_number_are_left_out(written: str) -> None:
    left_out({"sms_number": written}, "sms_number", "SMS_INVALID")


def test_address_variants_are_sent_under_their_prefixed_names() -> None:
    record = build(street="1 Main St", city="Berlin", home_zip="10115", work_country="DE")
    assert record == {
        "email": "ana@example.com",
        "street": "1 Main St",
        "city": "Berlin",
        "home_zip": "10115",
        "work_country": "DE",
    }


def test_home_country_is_sent_as_the_primary_country_the_schema_can_take() -> None:
    assert build(home_city="Lyon", home_country="France") == {
        "email": "ana@example.com",
        "home_city": "Lyon",
        "country": "France",
    }
    left_out({"country": "DE", "home_country": "FR"}, "home_country", "NOT_SENDABLE")


def test_only_three_addresses_are_kept() -> None:
    record = left_out(
        {"city": "A", "home_city": "B", "work_city": "C", "other_city": "D"},
        "other_city",
        "TOO_MANY_ADDRESSES",
    )
    assert (record["city"], record["home_city"], record["work_city"]) == ("A", "B", "C")


def test_a_street_over_255_or_a_city_over_50_characters_is_left_out_not_cut() -> None:
    left_out({"home_city": "X" * 51}, "home_city", "TOO_LONG")
    left_out({"street": "S" * 256}, "street", "TOO_LONG")
    assert build(street="S" * 255) == {"email": "ana@example.com", "street": "S" * 255}


def test_custom_fields_are_sent_with_their_cf_prefix() -> None:
    assert build(**{"cf:shoe_size": " 42 "}) == {"email": "ana@example.com", "cf:shoe_size": "42"}


def test_custom_field_value_over_255_characters_is_left_out() -> None:
    left_out({"cf:notes": "n" * 256}, "cf:notes", "TOO_LONG")
    assert isinstance(build(**{"cf:notes": "n" * 255}), dict)


def test_only_25_custom_fields_are_kept_per_contact() -> None:
    custom: dict[str, object] = {f"cf:f{i}": "x" for i in range(25)}
    assert isinstance(build(**custom), dict)
    left_out({**custom, "cf:f25": "x"}, "cf:f25", "TOO_MANY_CUSTOM_FIELDS")


def test_warnings_add_up_and_the_contact_keeps_every_sendable_value() -> None:
    record, warnings = CC.build_record_with_warnings(
        {"email": "ana@example.com", "phone": "p" * 51, "anniversary": "someday",
         "birthday_month": 2, "birthday_day": 31, "last_name": "Ivanova", "sms_number": "1" * 20}
    )  # fmt: skip
    assert record == {"email": "ana@example.com", "last_name": "Ivanova"}
    assert sorted(w.field for w in warnings) == [
        "anniversary", "birthday_day", "phone", "sms_number"
    ]  # fmt: skip


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
