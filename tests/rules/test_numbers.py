"""A typed number is read one way only: what is judged is what is recorded (issue 11)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from batchline.rules.numbers import NotANumber, parse_decimal


@pytest.mark.req("DI-05", "A11-05")
@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("598.2", "598.2"),
        ("0,5013", "0.5013"),
        ("1,5", "1.5"),
        (" -12 ", "-12"),
        ("1500", "1500"),
        ("98,5", "98.5"),
    ],
)
def test_a_point_or_a_single_decimal_comma_reads_as_written(text: str, value: str) -> None:
    assert parse_decimal(text) == Decimal(value)


@pytest.mark.req("DI-05", "A11-05")
@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("1,500", "'1,500' could be 1.500 or 1500"),
        ("98,500", "'98,500' could be 98.500 or 98500"),
        ("1,500,000", "uses thousands separators"),
        ("1,500.5", "uses thousands separators"),
        ("abc", "'abc' is not a number"),
        ("NaN", "is not a number"),
        ("Infinity", "is not a number"),
    ],
)
def test_what_could_be_read_two_ways_is_refused_in_words(text: str, words: str) -> None:
    with pytest.raises(NotANumber, match=words.replace(".", r"\.").replace("(", r"\(")):
        parse_decimal(text)
