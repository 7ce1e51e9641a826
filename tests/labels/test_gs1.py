"""The GS1 rules the labels rest on: check digits, dates and element strings."""

from __future__ import annotations

import datetime as dt

import pytest
from biip.checksums import gs1_standard_check_digit
from hypothesis import given, settings
from hypothesis import strategies as st

from batchline.labels.gs1 import (
    GS,
    alphanumeric_problem,
    century_year,
    date_from_yymmdd,
    element_string,
    gtin_check_digit,
    gtin_is_valid,
    gtin_normalize,
    hri,
    yymmdd,
)

from .helpers import TODAY

ASCII_DIGITS = "0123456789"


@pytest.mark.req("WD-05", "A11-08")
@pytest.mark.parametrize(
    ("body", "check"),
    [
        ("0950110153000", 3),  # GS1's example GTIN-13 09501101530003
        ("950110153100", 0),  # GenSpecs 7.9.1 example
        ("9501234", 6),  # GTIN-8
        ("03600029145", 2),  # UPC-A 036000291452
        ("10614141123456789", 7),  # SSCC 106141411234567897 of GS1 examples
        ("0000000000000", 0),
    ],
)
def test_the_check_digit_is_the_gs1_one(body: str, check: int) -> None:
    assert gtin_check_digit(body) == check


@settings(derandomize=True)
@given(st.text(ASCII_DIGITS, min_size=1, max_size=17))
def test_the_check_digit_agrees_with_biip_for_any_digits(body: str) -> None:
    assert gtin_check_digit(body) == gs1_standard_check_digit(body)


@pytest.mark.req("WD-05", "A11-08")
def test_a_gtin_with_one_digit_changed_is_invalid() -> None:
    assert gtin_is_valid("09501101530003")
    assert not gtin_is_valid("09501101530004")
    assert not gtin_is_valid("09501101530013")  # a single changed digit always changes the check


@settings(derandomize=True)
@given(st.text(ASCII_DIGITS, min_size=13, max_size=13), st.integers(0, 12), st.integers(1, 9))
def test_any_single_digit_error_is_caught(body: str, position: int, shift: int) -> None:
    gtin = body + str(gtin_check_digit(body))
    changed = gtin[:position] + str((int(gtin[position]) + shift) % 10) + gtin[position + 1 :]
    assert not gtin_is_valid(changed)


def test_other_scripts_digits_are_not_a_gtin() -> None:
    # "٠٩٥٠١١٠١٥٣٠٠٠٣" is 09501101530003 in Arabic-Indic digits: str.isdigit says yes, GS1 says no.
    assert not gtin_is_valid("٠٩٥٠١١٠١٥٣٠٠٠٣")
    with pytest.raises(ValueError, match="digits only"):
        gtin_check_digit("٠٩٥")


def test_a_gtin_is_normalised_to_the_fourteen_digits_ai_01_carries() -> None:
    assert gtin_normalize("9501101530003") == "09501101530003"
    assert gtin_normalize("95012346") == "00000095012346"
    with pytest.raises(ValueError, match="last digit should be 3"):
        gtin_normalize("9501101530004")
    with pytest.raises(ValueError, match="8, 12, 13 or 14 digits"):
        gtin_normalize("95011015300")


def test_two_digit_years_fall_within_49_years_back_and_50_ahead() -> None:
    assert century_year(27, today=TODAY) == 2027
    assert century_year(76, today=TODAY) == 2076  # 50 ahead
    assert century_year(77, today=TODAY) == 1977  # 49 back
    assert century_year(99, today=dt.date(2001, 1, 1)) == 1999
    assert century_year(1, today=dt.date(2099, 6, 1)) == 2101


def test_day_00_is_the_last_day_of_the_month() -> None:
    assert date_from_yymmdd("270100", today=TODAY) == dt.date(2027, 1, 31)
    assert date_from_yymmdd("280200", today=TODAY) == dt.date(2028, 2, 29)  # leap year
    assert date_from_yymmdd("270200", today=TODAY) == dt.date(2027, 2, 28)
    assert date_from_yymmdd("270400", today=TODAY) == dt.date(2027, 4, 30)


@pytest.mark.parametrize("value", ["271301", "270001", "270230", "270431", "2701", "27013a"])
def test_a_field_that_is_not_a_date_is_refused(value: str) -> None:
    with pytest.raises(ValueError):
        date_from_yymmdd(value, today=TODAY)


def test_a_date_is_written_yymmdd() -> None:
    assert yymmdd(dt.date(2027, 1, 31)) == "270131"
    assert yymmdd(dt.date(2100, 12, 1)) == "001201"


def test_only_variable_length_fields_before_another_field_get_a_separator() -> None:
    elements = [("01", "09501101530003"), ("17", "270131"), ("10", "L-0042"), ("21", "C-000123")]
    assert element_string(elements) == "01095011015300031727013110L-0042" + GS + "21C-000123"
    assert element_string([("10", "A"), ("21", "B"), ("17", "270131")]) == f"10A{GS}21B{GS}17270131"
    assert hri(elements) == "(01)09501101530003(17)270131(10)L-0042(21)C-000123"


def test_lot_and_serial_must_fit_gs1_character_set_82() -> None:
    assert alphanumeric_problem("L-0042/a_(1)", what="lot number") is None
    assert "space" not in (alphanumeric_problem("L 0042", what="lot number") or "")
    assert "' '" in (alphanumeric_problem("L 0042", what="lot number") or "")
    assert "'#'" in (alphanumeric_problem("L#1", what="lot number") or "")
    assert "'é'" in (alphanumeric_problem("Lé", what="lot number") or "")
    assert "21 characters" in (alphanumeric_problem("L" * 21, what="lot number") or "")
    assert alphanumeric_problem("", what="lot number") == "The lot number is empty."
