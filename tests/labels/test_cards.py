"""The sample label and the finished product's label: their fields, and the barcode in the PNG specimen
and in the PDF decodes (with zxing-cpp) and scans back to what the record says."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
import zxingcpp
from PIL import Image

from batchline.labels import card
from batchline.labels.container import LabelError
from batchline.labels.product import ProductLabel
from batchline.labels.sample import SampleLabel
from batchline.labels.scan import parse_scan

from .helpers import TODAY

EXPIRY = dt.datetime(2029, 1, 31, 23, 0, tzinfo=dt.UTC)


def product(**kw) -> ProductLabel:
    fields = {
        "product_code": "PCM500",
        "product_name": "Paracetamol 500 mg tablets",
        "batch": "PCM-0001",
        "quantity": Decimal(100),
        "unit": "tablet",
        "expiry": EXPIRY,
        "storage": "Store below 25 °C",
        "gtin": "09501101530003",
    }
    return ProductLabel(**(fields | kw))


def decode_png(png: bytes) -> list[zxingcpp.Barcode]:
    return zxingcpp.read_barcodes(
        Image.open(io.BytesIO(png)).convert("L"),
        formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.DataMatrix),
        text_mode=zxingcpp.TextMode.Plain,
    )


@pytest.mark.req("LBL-01", "LBL-03")
def test_the_specimen_png_carries_a_gs1_barcode_that_scans_back_to_the_batch_and_expiry() -> None:
    label = product()
    png = card.render_png(label.card(specimen=True))
    assert png == card.render_png(label.card(specimen=True))  # the same data, the same bytes (its hash)
    (found,) = decode_png(png)
    scan = parse_scan("]d2" + found.text, today=TODAY)
    assert (scan.gtin, scan.lot, scan.expiry) == ("09501101530003", "PCM-0001", dt.date(2029, 1, 31))
    content = label.content()
    assert content["barcode"] == "(01)09501101530003(17)290131(10)PCM-0001" and content["gs1"]
    assert content["expiry_printed"] == "2029-01-31" and content["quantity"] == "100"


@pytest.mark.req("LBL-01")
def test_without_a_gtin_the_product_label_carries_the_batch_number() -> None:
    (found,) = decode_png(card.render_png(product(gtin=None).card()))
    assert found.text == "PCM-0001"


@pytest.mark.req("LBL-01")
@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"product_name": " "}, "product name"),
        ({"quantity": Decimal(0)}, "more than zero"),
        ({"expiry": dt.datetime(2029, 1, 31)}, "time zone"),
        ({"gtin": "123"}, "GTIN"),
    ],
)
def test_a_product_label_that_cannot_be_printed_is_refused_in_words(kw, message) -> None:
    with pytest.raises(LabelError, match=message):
        product(**kw)


@pytest.mark.req("IPC-01", "LBL-02")
def test_the_sample_label_pdf_holds_the_code_in_its_barcode_and_marks_a_reprint() -> None:
    label = SampleLabel(
        code="PCM-0001-S01",
        batch="PCM-0001",
        product_name="Paracetamol 500 mg tablets",
        material="in-process material",
        quantity=Decimal("5.2"),
        unit="g",
        test="Blend uniformity",
        method="SOP-QC-021",
        source="BLEND-01",
        position="top",
        taken_by="Olga Operator",
        taken_at=EXPIRY,
        print_count=2,
    )
    texts = [t.text for t in label.card().texts()]
    assert "REPRINT 2" in texts and "PCM-0001-S01" in texts and "5.2 g" in texts
    assert card.render_pdf(label.card(), title="x").startswith(b"%PDF")
    (found,) = decode_png(card.render_png(label.card()))
    assert found.text == "PCM-0001-S01"
