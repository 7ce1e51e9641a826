"""The label as PDF, checked as a reader would: rendered to pixels, its barcode decoded and scanned.

pdftoppm and pdftotext come from Debian's poppler-utils (``./dev test`` installs it when run
as root); zxing-cpp decodes the DataMatrix from the pixels.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from batchline.labels.container import ContainerLabel, ContainerStatus
from batchline.labels.pdf import render_pdf
from batchline.labels.scan import ScanKind, parse_scan

from .helpers import PLANT, TODAY, a_dispense, a_label

DPI = 300


@pytest.fixture(scope="module", autouse=True)
def _poppler() -> None:
    if shutil.which("pdftoppm") is None or shutil.which("pdftotext") is None:
        message = "pdftoppm/pdftotext missing: ./dev test installs them, or apt-get install poppler-utils"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)


def rendered(label: ContainerLabel, tmp_path: Path) -> Image.Image:
    pdf = tmp_path / "label.pdf"
    pdf.write_bytes(render_pdf(label))
    subprocess.run(
        ["pdftoppm", "-r", str(DPI), "-gray", "-png", "-singlefile", str(pdf), str(tmp_path / "label")],
        check=True,
    )
    return Image.open(tmp_path / "label.png")


def text_of(label: ContainerLabel, tmp_path: Path) -> str:
    pdf = tmp_path / "label.pdf"
    pdf.write_bytes(render_pdf(label))
    return subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True
    ).stdout


def decoded(image: Image.Image, mode: zxingcpp.TextMode = zxingcpp.TextMode.Plain) -> list[zxingcpp.Barcode]:
    return zxingcpp.read_barcodes(
        image, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.DataMatrix), text_mode=mode
    )


LONGEST = a_label(
    gtin="10614141000415",
    lot="L-2026/11-24_ABCDEFG",  # 20 characters, the most AI 10 carries
    container_id="C-" + "9" * 18,  # the most AI 21 carries
    expiry=dt.datetime(2030, 2, 28, 23, 59, tzinfo=PLANT),
)


@pytest.mark.req("WD-07", "LBL-01")
@pytest.mark.parametrize(
    "label", [a_label(), a_label(dispense=a_dispense()), LONGEST], ids=["received", "dispensed", "longest"]
)
def test_the_barcode_in_the_pdf_decodes_and_scans_back_to_the_labels_fields(
    label: ContainerLabel, tmp_path: Path
) -> None:
    (barcode,) = decoded(rendered(label, tmp_path))
    assert barcode.symbology_identifier == "]d2"
    assert barcode.content_type == zxingcpp.ContentType.GS1
    scan = parse_scan(barcode.symbology_identifier + barcode.text, today=TODAY)  # as a wedge scanner types it
    assert scan.kind == ScanKind.GS1
    assert scan.gtin == label.gtin
    assert scan.lot == label.lot
    assert scan.expiry == label.expiry_date
    assert scan.serial == scan.container_id == label.container_id


@pytest.mark.req("WD-07")
def test_the_decoders_printed_form_reads_back_too(tmp_path: Path) -> None:
    (barcode,) = decoded(rendered(a_label(), tmp_path), zxingcpp.TextMode.HRI)
    assert barcode.text == "(01)09501101530003(17)270131(10)L-0042(21)C-000123"
    assert parse_scan(barcode.text, today=TODAY).container_id == "C-000123"


@pytest.mark.req("WD-07", "MAT-05")
def test_without_a_gtin_the_pdf_barcode_scans_as_the_container(tmp_path: Path) -> None:
    (barcode,) = decoded(rendered(a_label(gtin=None), tmp_path))
    assert (barcode.symbology_identifier, barcode.text) == ("]d1", "C-000123")
    scan = parse_scan(barcode.symbology_identifier + barcode.text, today=TODAY)
    assert (scan.kind, scan.container_id) == (ScanKind.CONTAINER, "C-000123")


def test_the_page_is_the_label_100_by_70_mm(tmp_path: Path) -> None:
    width, height = rendered(a_label(), tmp_path).size
    assert abs(width - 100 / 25.4 * DPI) < 1.5  # pdftoppm rounds up
    assert abs(height - 70 / 25.4 * DPI) < 1.5


@pytest.mark.req("WD-07", "LBL-01")
def test_the_pdf_prints_every_field_a_dispensed_container_needs(tmp_path: Path) -> None:
    label = a_label(
        dispense=a_dispense(
            verified_by="Sam Supervisor", verified_at=dt.datetime(2026, 11, 24, 9, 20, tzinfo=dt.UTC)
        )
    )
    text = text_of(label, tmp_path)
    for expected in [
        "DISPENSED MATERIAL",
        "RELEASED",
        "Microcrystalline cellulose PH 102",
        "MCC-102",
        "L-0042",
        "C-000123",
        "12.500 kg",
        "0.850 kg",
        "2027-01-31 14:05 CET",
        "PCM-0001",
        "Paracetamol tablets 500 mg",
        "Olivia Operator",
        "Sam Supervisor",
        "2026-11-24 10:20 CET",
        "(01)09501101530003(17)270131(10)L-0042(21)C-000123",
    ]:
        assert expected in text, expected


@pytest.mark.req("LBL-02")
def test_a_reprint_says_reprint_and_an_original_does_not(tmp_path: Path) -> None:
    assert "REPRINT 2" in text_of(a_label(print_count=2), tmp_path)
    assert "REPRINT" not in text_of(a_label(print_count=1), tmp_path)


@pytest.mark.req("MAT-06")
def test_the_status_is_printed_large(tmp_path: Path) -> None:
    assert "QUARANTINE" in text_of(a_label(status=ContainerStatus.QUARANTINE), tmp_path)


def test_latin_names_print_with_the_embedded_font(tmp_path: Path) -> None:
    # Bitstream Vera: Latin-1 and part of Latin Extended-A (docs/labels.md says what it lacks).
    assert "Zoë Müller-Łukasz" in text_of(
        a_label(dispense=a_dispense(dispensed_by="Zoë Müller-Łukasz")), tmp_path
    )


def test_the_same_label_gives_the_same_bytes() -> None:
    assert render_pdf(a_label()) == render_pdf(a_label())
    assert render_pdf(a_label()) != render_pdf(a_label(lot="L-0043"))
