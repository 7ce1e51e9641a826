"""The label of a container returned to stock from a batch: it says so, and still scans as the container."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from batchline.labels.container import LabelError, Returned, label_lines
from batchline.labels.scan import parse_scan
from batchline.labels.zpl import render_zpl

from .helpers import NOW, TODAY, a_dispense, a_label
from .test_pdf import _poppler, decoded, rendered, text_of  # noqa: F401 (the module's poppler check)


def returned(**overrides: object) -> Returned:
    values: dict[str, object] = {"batch": "PCM-0001", "returned_by": "Olga Operator", "returned_at": NOW}
    return Returned(**(values | overrides))  # type: ignore[arg-type]


@pytest.mark.req("WD-12", "WD-07", "LBL-01")
def test_a_returned_container_label_names_the_batch_it_came_back_from_and_who_returned_it() -> None:
    label = a_label(returned=returned(), tare=None)
    lines = dict(label_lines(label))
    assert lines["Returned from"] == "batch PCM-0001"
    assert lines["Returned"] == "Olga Operator  2026-11-24 10:12 CET"
    assert lines["Lot"] == "L-0042" and lines["Supplier lot"] == "SUP-77-1"  # the lot's, as before
    assert "^FDRETURNED MATERIAL^FS" in render_zpl(label)


@pytest.mark.req("WD-12", "WD-07")
def test_the_returned_label_pdf_says_so_and_its_barcode_scans_back_to_the_container(tmp_path: Path) -> None:
    label = a_label(returned=returned(), tare=None)
    text = text_of(label, tmp_path)
    for expected in ("RETURNED MATERIAL", "Returned from", "batch PCM-0001", "Olga Operator", "L-0042"):
        assert expected in text, expected
    (barcode,) = decoded(rendered(label, tmp_path))
    assert parse_scan(barcode.symbology_identifier + barcode.text, today=TODAY).container_id == "C-000123"


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"returned": returned(), "dispense": a_dispense()}, "either dispensed for a batch or returned"),
        ({"returned": returned(batch=" ")}, "the batch and who returned it"),
        ({"returned": returned(returned_by="")}, "the batch and who returned it"),
        ({"returned": returned(returned_at=dt.datetime(2026, 1, 1))}, "time zone"),
    ],
)
def test_a_returned_label_that_cannot_be_printed_is_refused_with_the_field(
    overrides: dict[str, object], words: str
) -> None:
    with pytest.raises(LabelError, match=words):
        a_label(**overrides)
