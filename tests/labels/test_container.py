"""A container label's content, and the round trip label -> barcode -> scan -> the same fields."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batchline.labels.container import ContainerLabel, ContainerStatus, LabelError, decimal_text, label_lines
from batchline.labels.gs1 import CSET_82, GS, gtin_check_digit
from batchline.labels.scan import DEFAULT_PROFILE, ScanKind, ScannerProfile, container_id_format, parse_scan

from .helpers import NOW, PLANT, TODAY, a_dispense, a_label


@pytest.mark.req("WD-07")
def test_a_dispensed_container_label_carries_the_four_elements_of_211_101_b() -> None:
    label = a_label(quantity=Decimal("1.250"), dispense=a_dispense())
    lines = dict(label_lines(label))
    assert lines["Item code"] == "MCC-102"  # (b)(1) component name (printed large) or item code
    assert label.material_name == "Microcrystalline cellulose PH 102"
    assert lines["Lot"] == "L-0042"  # (b)(2) receiving or control number
    assert lines["Net"] == "1.250 kg"  # (b)(3) weight or measure in the new container
    assert lines["For batch"] == "PCM-0001"  # (b)(4) batch dispensed for, with product name and strength
    assert lines["Product"] == "Paracetamol tablets 500 mg"
    assert lines["Dispensed"] == "Olivia Operator  2026-11-24 10:12 CET"
    assert lines["Verified"] == "not yet"


@pytest.mark.req("WD-07", "WD-08")
def test_the_second_persons_check_is_printed_once_recorded() -> None:
    label = a_label(
        dispense=a_dispense(verified_by="Sam Supervisor", verified_at=NOW + dt.timedelta(minutes=3))
    )
    assert dict(label_lines(label))["Verified"] == "Sam Supervisor  2026-11-24 10:15 CET"


def test_a_received_container_label_shows_the_supplier_lot_and_receipt_date() -> None:
    lines = dict(label_lines(a_label()))
    assert lines["Supplier lot"] == "SUP-77-1"  # 211.184(a)
    assert lines["Received"] == "2026-02-03"
    assert lines["Expiry"] == "2027-01-31 14:05 CET"
    assert lines["Retest"] == "2026-07-31 00:00 CEST"  # 211.87
    assert lines["Tare"] == "0.850 kg"
    assert "For batch" not in lines


def test_a_container_without_expiry_says_so() -> None:
    assert dict(label_lines(a_label(expiry=None)))["Expiry"] == "none"


def test_quantities_print_without_exponent_or_minus_zero() -> None:
    assert decimal_text(Decimal("1E+1")) == "10"
    assert decimal_text(Decimal("-0.000")) == "0.000"
    assert decimal_text(Decimal("0.0000012")) == "0.0000012"


@pytest.mark.req("LBL-02")
def test_a_label_printed_again_is_a_reprint() -> None:
    assert not a_label().reprint
    assert a_label(print_count=2).reprint


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"lot": "L 42"}, "cannot carry"),
        ({"lot": "L" * 21}, "at most 20"),
        ({"lot": ""}, "empty"),
        ({"container_id": "000123"}, "C-000123"),
        ({"container_id": "c-000123"}, "C-000123"),
        ({"gtin": "09501101530004"}, "last digit should be 3"),
        ({"gtin": "12345"}, "8, 12, 13 or 14"),
        ({"material_name": "  "}, "material name"),
        ({"unit": ""}, "unit"),
        ({"quantity": Decimal("-1")}, "zero or more"),
        ({"quantity": Decimal("NaN")}, "zero or more"),
        ({"tare": Decimal("-0.1")}, "zero or more"),
        ({"quantity": 1.5}, "Decimal"),
        ({"status": "lost"}, "not one a label prints"),
        ({"print_count": 0}, "starts at 1"),
        ({"expiry": dt.datetime(2027, 1, 31)}, "time zone"),
        ({"dispense": a_dispense(dispensed_at=dt.datetime(2026, 1, 1))}, "time zone"),
        ({"dispense": a_dispense(verified_by="Sam")}, "both who verified and when"),
        ({"dispense": a_dispense(batch=" ")}, "the batch"),
    ],
)
def test_content_a_label_cannot_carry_is_refused_with_the_field(
    overrides: dict[str, object], words: str
) -> None:
    with pytest.raises(LabelError, match=words):
        a_label(**overrides)


def test_a_status_given_as_text_is_taken_as_the_status() -> None:
    assert a_label(status="quarantine").status is ContainerStatus.QUARANTINE


def test_a_gtin_8_12_or_13_is_stored_as_the_14_digits_ai_01_carries() -> None:
    assert a_label(gtin="9501101530003").gtin == "09501101530003"


@pytest.mark.req("WD-07")
def test_the_gs1_elements_are_gtin_expiry_lot_then_the_container_id() -> None:
    label = a_label()
    assert label.gs1_elements() == (
        ("01", "09501101530003"),
        ("17", "270131"),
        ("10", "L-0042"),
        ("21", "C-000123"),
    )
    barcode = label.barcode()
    assert barcode.gs1
    assert barcode.data == "01095011015300031727013110L-0042" + GS + "21C-000123"  # one separator only
    assert barcode.hri == "(01)09501101530003(17)270131(10)L-0042(21)C-000123"


def test_the_expiry_date_in_the_barcode_is_the_plants_calendar_date() -> None:
    late_evening_utc = dt.datetime(2027, 1, 31, 23, 30, tzinfo=dt.UTC)  # already 1 February in Berlin
    assert a_label(expiry=late_evening_utc).expiry_date == dt.date(2027, 2, 1)
    assert a_label(expiry=late_evening_utc, zone=dt.UTC).expiry_date == dt.date(2027, 1, 31)


@pytest.mark.req("WD-07", "MAT-05")
def test_without_a_gtin_the_barcode_is_the_container_id_alone() -> None:
    # GS1 allows a lot or a serial only beside a trade item number.
    label = a_label(gtin=None)
    assert label.gs1_elements() == ()
    barcode = label.barcode()
    assert (barcode.gs1, barcode.data, barcode.hri) == (False, "C-000123", "C-000123")
    result = parse_scan("]d1" + barcode.data, today=TODAY)
    assert (result.kind, result.container_id) == (ScanKind.CONTAINER, "C-000123")


# The round trip, for any label content the label accepts.

LOTS = st.text(alphabet=sorted(CSET_82), min_size=1, max_size=20)
CONTAINER_IDS = st.integers(0, 10**18 - 1).map(container_id_format) | st.from_regex(
    r"C-[0-9]{1,18}", fullmatch=True
)


@st.composite
def gtins(draw: st.DrawFn) -> str:
    body = draw(st.text("0123456789", min_size=7, max_size=13).filter(lambda b: len(b) in (7, 11, 12, 13)))
    return body + str(gtin_check_digit(body))


# Within the GS1 window around TODAY (49 years back, 50 ahead), as any real expiry is.
EXPIRIES = st.datetimes(
    min_value=dt.datetime(1978, 1, 1), max_value=dt.datetime(2075, 12, 30), timezones=st.just(dt.UTC)
) | st.datetimes(
    min_value=dt.datetime(1978, 1, 1),
    max_value=dt.datetime(2075, 12, 30),
    timezones=st.sampled_from([PLANT, ZoneInfo("America/New_York"), ZoneInfo("Asia/Kolkata")]),
)


@st.composite
def labels(draw: st.DrawFn) -> ContainerLabel:
    return a_label(
        gtin=draw(gtins()),
        lot=draw(LOTS),
        container_id=draw(CONTAINER_IDS),
        expiry=draw(st.none() | EXPIRIES),
        zone=draw(st.sampled_from([dt.UTC, PLANT, ZoneInfo("Pacific/Auckland")])),
        status=draw(st.sampled_from(ContainerStatus)),
    )


def assert_same_fields(label: ContainerLabel, raw: str, profile: ScannerProfile = DEFAULT_PROFILE) -> None:
    result = parse_scan(raw, profile=profile, today=TODAY)
    assert result.kind == ScanKind.GS1
    assert result.gtin == label.gtin
    assert result.lot == label.lot
    assert result.expiry == label.expiry_date
    assert result.serial == label.container_id
    assert result.container_id == label.container_id
    assert result.elements == label.gs1_elements()


@pytest.mark.req("WD-07", "LBL-01")
@settings(max_examples=300, derandomize=True, deadline=None)
@given(labels(), st.sampled_from(["]d2", "]C1", "]Q3", "", GS]))
def test_the_element_string_scans_back_to_the_labels_fields(label: ContainerLabel, prefix: str) -> None:
    assert_same_fields(label, prefix + label.barcode().data + "\r\n")


@pytest.mark.req("WD-07")
@settings(max_examples=200, derandomize=True, deadline=None)
@given(labels(), st.sampled_from(["|", "~", "^", "@", "{}"]))
def test_the_element_string_scans_back_through_a_scanner_that_substitutes_gs(
    label: ContainerLabel, sub: str
) -> None:
    raw = "]d2" + label.barcode().data.replace(GS, sub)
    assert_same_fields(label, raw, profile=ScannerProfile(gs_substitute=sub))


@pytest.mark.req("WD-07")
@settings(max_examples=200, derandomize=True, deadline=None)
@given(labels().filter(lambda label: "(" not in label.lot))
def test_the_printed_form_under_the_barcode_reads_back_too(label: ContainerLabel) -> None:
    # A "(" in a lot makes the printed form ambiguous ("L(10)" looks like an AI); the
    # barcode itself never is, since it separates fields with FNC1.
    assert_same_fields(label, label.barcode().hri)
