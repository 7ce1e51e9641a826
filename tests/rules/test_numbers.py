"""A typed number is read one way only, by the site's notation: what is judged is what is recorded (issue 11)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchline.rules.numbers import COMMA, POINT, NotANumber, read, recorded, shown


@pytest.mark.req("DI-05", "A11-05")
@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("598.2", "598.2"),
        ("1.500", "1.5"),  # the site's own decimal point: no other reading
        (" -12 ", "-12"),
        ("+2.5", "2.5"),
        ("1500", "1500"),
        (".5", "0.5"),
        ("007", "7"),
        ("+0", "0"),
    ],
)
def test_an_entry_in_the_sites_notation_reads_as_written_on_a_point_site(text: str, value: str) -> None:
    assert read(text, POINT) == Decimal(value)


@pytest.mark.req("DI-05", "A11-05")
@pytest.mark.parametrize(
    ("text", "value"),
    [("0,5013", "0.5013"), ("600,5", "600.5"), ("1,500", "1.5"), ("98,5", "98.5"), ("-3", "-3")],
)
def test_an_entry_in_the_sites_notation_reads_as_written_on_a_comma_site(text: str, value: str) -> None:
    assert read(text, COMMA) == Decimal(value)


@pytest.mark.req("DI-05", "A11-05", "A11D-05")
@pytest.mark.parametrize(
    ("notation", "text", "words"),
    [
        (POINT, "1,500", "1,500: did you mean 1.500 or 1500?"),
        (POINT, "98,500", "98,500: did you mean 98.500 or 98500?"),
        (COMMA, "1.500", "1.500: did you mean 1,500 or 1500?"),
        (POINT, "-1,500", "-1,500: did you mean -1.500 or -1500?"),
        (POINT, "0,5013", "0,5013: this site writes decimals with a point; did you mean 0.5013?"),
        (COMMA, "0.5013", "0.5013: this site writes decimals with a comma; did you mean 0,5013?"),
        (POINT, "1,500,000", "write the number without thousands separators; did you mean 1500000?"),
        (POINT, "1,500.5", "write the number without thousands separators; did you mean 1500.5?"),
        (COMMA, "1.500,5", "write the number without thousands separators; did you mean 1500,5?"),
        (POINT, "1 500", "did you mean 1500?"),
        (COMMA, "1'500,25", "did you mean 1500,25?"),
        (POINT, "1.500.000", "1.500.000 has more than one decimal point: did you mean 1500000?"),
        (POINT, "1,5,0", "1,5,0 is not a number: write digits, with a point for the decimals"),
    ],
)
def test_what_could_be_read_another_way_is_refused_with_the_readings_in_the_sites_notation(
    notation, text: str, words: str
) -> None:
    with pytest.raises(NotANumber) as refused:
        read(text, notation)
    assert words in str(refused.value)


@pytest.mark.req("A11-05")
@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("abc", "abc is not a number"),
        ("NaN", "NaN is not a number"),
        ("-Infinity", "-Infinity is not a number"),
        ("inf", "inf is not a number"),
        ("1e400", "1e400: write the number out in digits, without an exponent"),
        ("1.5E-3", "without an exponent"),
        ("-0", "-0: zero has no sign, write 0"),
        ("-0.000", "zero has no sign"),
        ("1" * 41, "is too long for a number (at most 40 characters)"),
        ("١٢", "is not a number"),  # Arabic-Indic digits: Decimal() would read them
        ("0x10", "is not a number"),
        ("1_000", "is not a number"),
        ("", "nothing was entered"),
        ("-", "is not a number"),
        (".", "is not a number"),
    ],
)
def test_what_is_no_number_is_refused_in_words(text: str, words: str) -> None:
    with pytest.raises(NotANumber) as refused:
        read(text, POINT)
    assert words in str(refused.value)


@pytest.mark.req("DI-05")
@pytest.mark.parametrize(
    ("number", "notation", "text"),
    [
        ("0.501300000", POINT, "0.5013"),
        ("0.501300000", COMMA, "0,5013"),
        ("100000.000000", POINT, "100000"),
        ("-0", POINT, "0"),
        ("1E+5", COMMA, "100000"),
    ],
)
def test_a_number_is_shown_in_the_sites_notation_without_exponent_or_trailing_zeros(
    number: str, notation, text: str
) -> None:
    assert shown(Decimal(number), notation) == text


@pytest.mark.req("DI-05", "DI-02")
def test_a_recorded_value_shows_its_typed_text_only_where_that_reads_as_the_recorded_number() -> None:
    assert recorded(Decimal("598.200000000"), "598.20", POINT) == ("598.20", "")
    # Typed on a comma site, read now on a point site: the number, and what was typed beside it.
    assert recorded(Decimal("0.501300000"), "0,5013", POINT) == ("0.5013", "0,5013")
    assert recorded(Decimal("0.501300000"), "0,5013", COMMA) == ("0,5013", "")
    # A stored text that reads as another number never stands for the value.
    assert recorded(Decimal("1.5"), "1,500", POINT) == ("1.5", "1,500")
    assert recorded(None, "granulator clean", POINT) == ("granulator clean", "")
    # A calculation writes its decimals; shown in the site's notation, never as "typed".
    assert recorded(Decimal("12.300000000"), "12.30", COMMA, calculated=True) == ("12,30", "")


@pytest.mark.req("DI-05", "A11-05")
@given(
    st.decimals(allow_nan=False, allow_infinity=False, places=6, min_value=-(10**12), max_value=10**12),
    st.sampled_from([POINT, COMMA]),
)
def test_every_number_the_site_shows_reads_back_as_itself(number: Decimal, notation) -> None:
    assert read(shown(number, notation), notation) == number


@pytest.mark.req("DI-05", "A11-05")
@given(st.text(max_size=12), st.sampled_from([POINT, COMMA]))
def test_any_text_is_read_as_one_number_or_refused_in_words(text: str, notation) -> None:
    try:
        number = read(text, notation)
    except NotANumber as exc:
        assert str(exc)
        return
    assert number.is_finite()
    # Read, it holds no thousands separator: the other decimal mark never appears in it.
    other = "," if notation is POINT else "."
    assert other not in text
