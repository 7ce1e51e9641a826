"""What a keyboard-wedge scanner types, read back: GS1 labels, Batchline ids, and what goes wrong."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchline.labels.gs1 import CSET_82, GS
from batchline.labels.scan import (
    DEFAULT_PROFILE,
    Scan,
    ScanError,
    ScanKind,
    ScannerProfile,
    container_id_format,
    container_id_match,
    equipment_tag,
    parse_scan,
)

from .helpers import TODAY

HRI = "(01)09501101530003(10)L-0042(17)270131(21)C-0001"
RAW = "01095011015300031727013110L-0042" + GS + "21C-0001"


def scan(raw: str, profile: ScannerProfile = DEFAULT_PROFILE) -> Scan:
    return parse_scan(raw, profile=profile, today=TODAY)


def refusal(raw: str, profile: ScannerProfile = DEFAULT_PROFILE) -> ScanError:
    with pytest.raises(ScanError) as caught:
        scan(raw, profile)
    return caught.value


def assert_the_example_label(result: Scan) -> None:
    assert result.kind == ScanKind.GS1
    assert result.gtin == "09501101530003"
    assert result.lot == "L-0042"
    assert result.expiry == dt.date(2027, 1, 31)
    assert result.serial == "C-0001"
    assert result.container_id == "C-0001"


@pytest.mark.req("WD-05")
def test_the_printed_form_with_parentheses_is_read() -> None:
    result = scan(HRI)
    assert_the_example_label(result)
    assert result.raw == HRI
    assert result.symbology is None
    assert result.elements == (("01", "09501101530003"), ("10", "L-0042"), ("17", "270131"), ("21", "C-0001"))


@pytest.mark.req("WD-05")
def test_the_printed_form_may_hold_spaces() -> None:
    assert_the_example_label(scan("(01) 09501101530003 (10) L-0042 (17) 270131 (21) C-0001"))


@pytest.mark.req("WD-05")
@pytest.mark.parametrize("symbology", ["]d2", "]C1", "]Q3", ""])
def test_raw_element_strings_are_read_with_or_without_a_symbology_identifier(symbology: str) -> None:
    result = scan(symbology + RAW + "\r\n")
    assert_the_example_label(result)
    assert result.symbology == (symbology or None)
    assert result.raw == symbology + RAW + "\r\n"  # exactly as typed, for the record


@pytest.mark.req("WD-05")
def test_a_leading_fnc1_sent_as_gs_is_ignored() -> None:
    assert_the_example_label(scan(GS + RAW))
    assert_the_example_label(scan("]d2" + GS + RAW))


@pytest.mark.req("WD-05")
@pytest.mark.parametrize("substitute", ["|", "~", "^", "#", "@", "{}", "$$"])
def test_a_scanner_that_sends_another_character_for_gs_is_read_with_its_profile(substitute: str) -> None:
    profile = ScannerProfile(gs_substitute=substitute)
    assert_the_example_label(scan("]d2" + RAW.replace(GS, substitute), profile=profile))
    assert_the_example_label(scan(RAW, profile=profile))  # a real GS still works


def test_plain_text_keeps_the_substitute_character() -> None:
    result = scan("Drum 3|4", ScannerProfile(gs_substitute="|"))
    assert (result.kind, result.text) == (ScanKind.TEXT, "Drum 3|4")


def test_without_its_profile_a_substituted_separator_is_read_into_the_lot() -> None:
    error = refusal("]d2" + RAW.replace(GS, "|"))
    assert error.code == "SCAN_MALFORMED"


@pytest.mark.parametrize("substitute", ["", "-", "A", "1", " ", "\t", "]", "(", "_", "abcde"])
def test_a_gs_substitute_that_can_occur_in_a_scan_is_refused_at_configuration(substitute: str) -> None:
    with pytest.raises(ValueError):
        ScannerProfile(gs_substitute=substitute)


@pytest.mark.req("WD-05")
def test_a_digital_link_uri_is_read() -> None:
    result = scan("]Q3https://id.gs1.org/01/09501101530003/10/L-0042/21/C-0001?17=270131")
    assert_the_example_label(result)


@pytest.mark.req("WD-05")
@pytest.mark.parametrize("raw", ["9501101530003", "]E09501101530003", "09501101530003", "]I109501101530003"])
def test_a_bare_gtin_from_an_ean_or_itf_symbol_is_a_gs1_scan_with_only_a_gtin(raw: str) -> None:
    result = scan(raw)
    assert (result.kind, result.gtin, result.lot, result.expiry) == (
        ScanKind.GS1,
        "09501101530003",
        None,
        None,
    )


def test_an_sscc_is_read() -> None:
    result = scan("00106141411234567897")
    assert result.sscc == "106141411234567897"
    assert result.gtin is None


def test_expiry_day_00_means_the_end_of_the_month() -> None:
    assert scan("]d2010950110153000317270200").expiry == dt.date(2027, 2, 28)


def test_the_century_of_the_expiry_follows_the_day_of_the_scan() -> None:
    assert scan("(17)760101").expiry == dt.date(2076, 1, 1)
    assert scan("(17)770101").expiry == dt.date(1977, 1, 1)  # long expired, and says so
    assert parse_scan("(17)770101", today=dt.date(2030, 1, 1)).expiry == dt.date(2077, 1, 1)


def test_a_supplier_serial_that_is_not_a_container_id_leaves_the_container_id_empty() -> None:
    result = scan("(01)09501101530003(21)88-1234")
    assert result.serial == "88-1234"
    assert result.container_id is None


@pytest.mark.req("MAT-05")
@pytest.mark.parametrize(
    ("raw", "expected"), [("C-000123", "C-000123"), ("c-12", "C-12"), ("]C0C-000001", "C-000001")]
)
def test_a_batchline_container_id_is_a_container_scan(raw: str, expected: str) -> None:
    result = scan(raw + "\n")
    assert (result.kind, result.container_id, result.gtin) == (ScanKind.CONTAINER, expected, None)


@pytest.mark.req("MAT-05")
def test_container_ids_are_formatted_with_at_least_six_digits() -> None:
    assert container_id_format(123) == "C-000123"
    assert container_id_format(12345678) == "C-12345678"
    assert container_id_match("C-000123") == "C-000123"
    assert container_id_match("C-") is None
    assert container_id_match("C-0000000000000000001") is None  # 19 digits: longer than AI 21 allows
    with pytest.raises(ValueError):
        container_id_format(-1)


@pytest.mark.req("EQ-05")
@pytest.mark.parametrize(
    ("raw", "code"), [("EQ:GRAN-01", "GRAN-01"), ("eq:BLEND_2", "BLEND_2"), ("]C0EQ:SC-7", "SC-7")]
)
def test_an_equipment_tag_is_an_equipment_scan(raw: str, code: str) -> None:
    result = scan(raw)
    assert (result.kind, result.equipment_code) == (ScanKind.EQUIPMENT, code)


@pytest.mark.req("EQ-05")
def test_an_equipment_tag_is_made_from_an_equipment_code() -> None:
    assert equipment_tag("GRAN-01") == "EQ:GRAN-01"
    assert scan(equipment_tag("GRAN-01")).equipment_code == "GRAN-01"
    with pytest.raises(ValueError):
        equipment_tag("GRAN 01")


@pytest.mark.parametrize(
    "raw", ["hello", "PCM-0001", "EQ:", "EQ:has space", "C-12a", "1234567", "https://example.org/x"]
)
def test_anything_else_is_plain_text(raw: str) -> None:
    result = scan(raw)
    assert (result.kind, result.text) == (ScanKind.TEXT, raw)


# Refused scans: each shows the operator a sentence, and a stable code.


@pytest.mark.req("WD-05", "A11-08")
def test_a_wrong_gtin_check_digit_is_refused_in_words() -> None:
    error = refusal("(01)09501101530004(10)L-0042")
    assert error.code == "SCAN_BAD_CHECK_DIGIT"
    assert "product code (GTIN) 09501101530004" in error.message
    assert "last digit should be 3" in error.message
    assert refusal("]d20109501101530004").code == "SCAN_BAD_CHECK_DIGIT"
    assert refusal("9501101530004").code == "SCAN_BAD_CHECK_DIGIT"
    assert refusal("00106141411234567890").code == "SCAN_BAD_CHECK_DIGIT"


@pytest.mark.req("WD-05")
@pytest.mark.parametrize("raw", ["(23)1234", "]d22312345", "0109501101530003" + "2312345", "(9)12"])
def test_an_unknown_application_identifier_is_refused(raw: str) -> None:
    error = refusal(raw)
    assert error.code in ("SCAN_UNKNOWN_AI", "SCAN_MALFORMED")
    assert "\x1d" not in error.message


def test_an_unknown_application_identifier_names_the_field() -> None:
    error = refusal("(23)1234")
    assert error.code == "SCAN_UNKNOWN_AI"
    assert "does not know" in error.message


@pytest.mark.req("WD-05")
@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ("(01)0950110153", "product code (GTIN) (01)"),
        ("]d2010950110153000317270", "expiry date (17)"),
        ("(17)2701", "expiry date (17)"),
        ("]C100106141411", "pallet code (SSCC) (00)"),
    ],
)
def test_a_truncated_scan_is_refused_as_incomplete(raw: str, field: str) -> None:
    error = refusal(raw)
    assert error.code == "SCAN_TRUNCATED"
    assert field in error.message
    assert "incomplete" in error.message


@pytest.mark.parametrize("raw", ["(17)271301", "(17)270230", "]d2010950110153000317270431"])
def test_an_expiry_that_is_not_a_date_is_refused(raw: str) -> None:
    error = refusal(raw)
    assert error.code == "SCAN_BAD_DATE"
    assert "not a real date" in error.message


def test_a_lot_longer_than_gs1_allows_is_refused() -> None:
    assert refusal("]d210" + "A" * 25 + GS + "21C-1").code == "SCAN_MALFORMED"


def test_two_different_lots_in_one_barcode_are_refused() -> None:
    error = refusal("(10)L-1(10)L-2")
    assert error.code == "SCAN_CONFLICT"
    assert "two different lot numbers" in error.message
    assert scan("(10)L-1(10)L-1").lot == "L-1"  # the same value twice says nothing new


@pytest.mark.parametrize("raw", ["", "   ", "\r\n", GS, "]d2", "]d2\r\n"])
def test_an_empty_scan_is_refused(raw: str) -> None:
    assert refusal(raw).code == "SCAN_EMPTY"


@pytest.mark.parametrize("raw", ["]", "]x", "]j1abc", "]W0C-000123"])
def test_an_unknown_symbology_prefix_is_refused(raw: str) -> None:
    assert refusal(raw).code == "SCAN_SYMBOLOGY"


def test_gs1_data_outside_ascii_is_refused() -> None:
    # A scanner set to the wrong keyboard layout, or digits from another script.
    assert refusal("]d201٠٩٥٠١١٠١٥٣٠٠٠٣").code == "SCAN_MALFORMED"
    assert refusal("(10)Lé").code == "SCAN_MALFORMED"


def test_control_characters_in_plain_text_are_refused() -> None:
    assert refusal("abc\x04def").code == "SCAN_UNREADABLE"


def test_a_scan_longer_than_any_label_is_refused() -> None:
    assert refusal("A" * 513).code == "SCAN_TOO_LONG"


def test_a_malformed_printed_form_is_refused() -> None:
    assert refusal("(01)").code in ("SCAN_TRUNCATED", "SCAN_MALFORMED")
    assert refusal("(0109501101530003").code == "SCAN_MALFORMED"


# Whatever is typed: a Scan or a ScanError, never another exception.

GS1_ISH = st.text(alphabet=[*sorted(CSET_82), GS, "|", "]", " ", "\r", "é"], max_size=60)
PREFIXED = st.tuples(st.sampled_from(["", "]d2", "]C1", "]Q3", "]E0", "]C0", "("]), GS1_ISH).map("".join)
DIGITS_WITH_AIS = st.lists(
    st.tuples(
        st.sampled_from(["00", "01", "10", "17", "21", "11", "3103", "7003", "99"]),
        st.text("0123456789A-", max_size=20),
    ),
    max_size=5,
).map(lambda parts: "".join(ai + value + GS for ai, value in parts))


@settings(max_examples=400, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=80), PREFIXED, DIGITS_WITH_AIS), st.sampled_from([None, "|"]))
def test_any_input_gives_a_scan_or_a_scan_error(raw: str, substitute: str | None) -> None:
    try:
        result = parse_scan(raw, profile=ScannerProfile(gs_substitute=substitute), today=TODAY)
    except ScanError as error:
        assert error.code.startswith("SCAN_")
        assert error.message and error.message[0].isupper()
    else:
        assert result.raw == raw
        if result.gtin is not None:
            assert len(result.gtin) == 14
