"""MT-SICS lines, without a network: what a scale writes, Batchline reads by the same rules."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchline.devices.mtsics import (
    LineSplitter,
    Reading,
    ScaleError,
    ScaleNotReady,
    ScaleOverload,
    ScaleProtocolError,
    ScaleUnderload,
    acknowledgement,
    decode_line,
    format_text,
    format_value,
    format_weight,
    parse_line,
    text_answer,
    weight_reading,
)


@pytest.mark.req("WD-01", "DI-04", "DI-01")
def test_a_stable_answer_is_a_reading_with_its_raw_line_and_the_scale_serial() -> None:
    reading = weight_reading("S S      100.00 g", command="S", serial="B123456789")
    assert reading == Reading(
        value=D("100.00"), unit="g", stable=True, raw="S S      100.00 g", serial="B123456789", command="S"
    )
    assert str(reading.value) == "100.00"  # the scale's decimal places are kept


@pytest.mark.req("WD-01")
def test_a_dynamic_answer_is_a_reading_only_from_the_immediate_commands() -> None:
    assert not weight_reading("S D      99.87 g", command="SI", serial="X").stable
    assert not weight_reading("S D      99.87 g", command="SIR", serial="X").stable
    # S promises a stable weight: a dynamic answer to it is no weight at all.
    with pytest.raises(ScaleProtocolError):
        weight_reading("S D      99.87 g", command="S", serial="X")


@pytest.mark.req("WD-01", "DI-06")
@pytest.mark.parametrize(
    ("raw", "refusal", "code"),
    [
        ("S I", ScaleNotReady, "SCALE_NOT_READY"),
        ("S +", ScaleOverload, "SCALE_OVERLOAD"),
        ("S -", ScaleUnderload, "SCALE_UNDERLOAD"),
        ("ES", ScaleError, "SCALE_SYNTAX_ERROR"),
        ("ET", ScaleError, "SCALE_TRANSMISSION_ERROR"),
        ("EL", ScaleError, "SCALE_LOGICAL_ERROR"),
    ],
)
def test_status_and_error_answers_are_refusals_with_a_code_and_the_raw_line(raw, refusal, code) -> None:
    with pytest.raises(refusal) as caught:
        weight_reading(raw, command="S", serial="B1")
    assert (caught.value.code, caught.value.raw, caught.value.command, caught.value.serial) == (
        code,
        raw,
        "S",
        "B1",
    )
    assert "No " in caught.value.message


def test_a_scale_error_keeps_its_two_letters() -> None:
    with pytest.raises(ScaleError) as caught:
        acknowledgement("EL", command="Z")
    assert caught.value.error == "EL"
    with pytest.raises(ScaleError) as caught:
        weight_reading("TA L", command="TA", serial="B1")
    assert caught.value.error == "EL"


@pytest.mark.req("WD-01", "DI-05")
@pytest.mark.parametrize(
    "raw",
    [
        "",
        "S",
        "S S",  # a weight status without a weight
        "S S 100.00",
        "S S 1OO.00 g",
        "S S 12.3.4 g",
        "S S 1e3 g",
        "S S NaN g",
        "S S Infinity g",
        "S S 100.00 g extra",
        "s s 100.00 g",
        "S X 100.00 g",
        "ES 1",
        'I4 A "unterminated',
        "S S 100.00 g\r",
        "S S \u0661\u0660\u0660 g",  # Arabic-Indic digits: Decimal() would read 100
    ],
)
def test_garbage_is_never_a_weight(raw: str) -> None:
    with pytest.raises(ScaleProtocolError):
        weight_reading(raw, command="SI", serial="B1")


@pytest.mark.req("WD-01")
def test_an_answer_to_another_command_is_never_taken_as_the_answer() -> None:
    with pytest.raises(ScaleProtocolError, match="to the command TA"):
        weight_reading("T S      12.00 g", command="TA", serial="B1")
    with pytest.raises(ScaleProtocolError):
        text_answer('I2 A "XS204 Excellence 220.0090 g"', command="I4")


@pytest.mark.req("DI-01")
def test_text_answers_give_the_quoted_text() -> None:
    assert text_answer('I2 A "XS204 Excellence 220.0090 g"', command="I2") == "XS204 Excellence 220.0090 g"
    assert text_answer('I4 A "B123456789"', command="I4") == "B123456789"
    assert text_answer('I4 A "B123456789"', command="@") == "B123456789"
    with pytest.raises(ScaleNotReady):
        text_answer("I4 I", command="I4")
    with pytest.raises(ScaleProtocolError):
        text_answer('I4 A "S\u00e9rie"', command="I4")


def test_acknowledgements() -> None:
    acknowledgement("TAC A", command="TAC")
    acknowledgement("Z A", command="Z")
    with pytest.raises(ScaleOverload):
        acknowledgement("Z +", command="Z")
    with pytest.raises(ScaleProtocolError):
        acknowledgement("Z A 1.00 g", command="Z")


def test_the_value_field_is_right_aligned_and_ten_wide() -> None:
    assert format_weight("S", "S", D("100.00"), "g") == "S S     100.00 g"
    assert format_weight("S", "D", D("-0.5"), "kg") == "S D       -0.5 kg"
    # Wider than the field: the field grows, no digit is lost.
    assert format_weight("S", "S", D("-123456.7890"), "g") == "S S -123456.7890 g"
    assert format_text("I4", "SIM-0001") == 'I4 A "SIM-0001"'
    with pytest.raises(ValueError):
        format_text("I4", 'a "quoted" serial')
    with pytest.raises(ValueError):
        format_value(D("NaN"))


@given(
    digits=st.integers(min_value=-(10**12), max_value=10**12),
    places=st.integers(min_value=0, max_value=6),
    unit=st.sampled_from(["g", "kg", "mg", "ct", "lb", "oz", "ozt", "%"]),
    status=st.sampled_from(["S", "D"]),
)
def test_format_then_parse_gives_back_the_value_its_places_and_the_unit(digits, places, unit, status) -> None:
    value = D(digits).scaleb(-places)
    raw = format_weight("S", status, value, unit)
    reading = weight_reading(raw, command="SI", serial="B1")
    assert (reading.value, reading.unit, reading.stable, reading.raw) == (value, unit, status == "S", raw)
    assert reading.value.as_tuple().exponent == -places
    assert parse_line(raw).value == value


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters='"')))
def test_any_printable_text_survives_a_text_answer(text: str) -> None:
    assert text_answer(format_text("I2", text), command="I2") == text


@given(st.binary(max_size=80))
def test_arbitrary_bytes_are_a_reading_or_a_protocol_error_never_anything_else(data: bytes) -> None:
    try:
        reading = weight_reading(decode_line(data), command="SI", serial="B1")
    except (ScaleProtocolError, ScaleError, ScaleNotReady, ScaleOverload, ScaleUnderload):
        return
    assert reading.value.is_finite()


@pytest.mark.req("DI-04")
def test_lines_are_whole_however_the_bytes_arrive() -> None:
    splitter = LineSplitter()
    stream = b"S S     100.00 g\r\nS D      99.87 g\r\nTAC A\n"
    lines: list[bytes] = []
    for i in range(len(stream)):
        lines += splitter.feed(stream[i : i + 1])
    assert lines == [b"S S     100.00 g", b"S D      99.87 g", b"TAC A"]
    assert not splitter.pending


def test_a_line_without_end_is_refused_before_it_fills_memory() -> None:
    splitter = LineSplitter(max_line=64)
    splitter.feed(b"S" * 64)
    with pytest.raises(ScaleProtocolError, match="longer than 64"):
        splitter.feed(b"S")


def test_control_characters_and_non_ascii_are_garbage() -> None:
    for data in (b"S S 1.00 g\x00", "S S 1,00 µg".encode(), b"\xff"):
        with pytest.raises(ScaleProtocolError):
            decode_line(data)
