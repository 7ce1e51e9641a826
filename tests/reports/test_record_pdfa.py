"""The record PDF as a filed document: PDF/A-2b, dated when generated, readable (BR-01, DI-02, A11-11).

Read back with two readers ReportLab has nothing to do with: qpdf (``qpdf --check``, Debian's
``qpdf``, which ``./dev test`` installs when run as root) and pypdf (information dictionary, XMP
packet, output intent, fonts); the text with poppler's ``pdftotext``.
"""

from __future__ import annotations

import copy
import datetime as dt
import io
import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path
from xml.etree import ElementTree

import pytest
from pypdf import PdfReader

from batchline.execution.scaling import limits_text, scaled_text
from batchline.reports.content import content_sha256, record_content
from batchline.reports.layout import amount, wrap
from batchline.reports.pdf import render_pdf
from batchline.reports.pdfa import REGULAR, fonts
from tests.conftest import CI
from tests.reports.helpers import complete_batch
from tests.reports.test_records import QUALITY, pdf_text

pytestmark = pytest.mark.django_db

NS = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "pdfaid": "http://www.aiim.org/pdfa/ns/id/",
    "dc": "http://purl.org/dc/elements/1.1/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "pdf": "http://ns.adobe.com/pdf/1.3/",
    "xmpMM": "http://ns.adobe.com/xap/1.0/mm/",
}
STANDARD_14 = {
    "Courier",
    "Helvetica",
    "Times-Roman",
    "Symbol",
    "ZapfDingbats",
}


def qpdf_check(pdf: bytes, tmp_path: Path) -> str:
    if shutil.which("qpdf") is None:
        message = "qpdf is missing: apt-get install qpdf (./dev test does this when run as root)"
        if CI:
            pytest.fail(message)
        pytest.skip(message)
    path = tmp_path / "record.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["qpdf", "--check", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def xmp_of(reader: PdfReader) -> ElementTree.Element:
    metadata = reader.trailer["/Root"]["/Metadata"].get_object()
    assert (metadata["/Type"], metadata["/Subtype"]) == ("/Metadata", "/XML")
    packet = metadata.get_data()
    assert packet.startswith(b'<?xpacket begin="\xef\xbb\xbf"')  # UTF-8, no bytes or encoding attribute
    return ElementTree.fromstring(packet[packet.index(b"<x:xmpmeta") : packet.rindex(b"</x:xmpmeta>") + 12])


def one(xmp: ElementTree.Element, path: str) -> str:
    found = xmp.findall(f".//{path}", NS)
    assert len(found) == 1, path
    return found[0].text or ""


def info_date(value: str) -> dt.datetime:
    return dt.datetime.strptime(value.replace("'", ""), "D:%Y%m%d%H%M%S%z")


@pytest.mark.req("BR-01", "P11-02", "DI-02", "DI-08")
def test_the_record_is_a_pdfa_2b_document_qpdf_finds_sound(tmp_path) -> None:
    _people, batch = complete_batch()
    content = record_content(batch)
    pdf = render_pdf(content, time_zone="UTC")
    assert "No syntax or stream encoding errors found" in qpdf_check(pdf, tmp_path)
    assert pdf.startswith(b"%PDF-1.7\n%") and all(b > 127 for b in pdf[10:14])
    reader = PdfReader(io.BytesIO(pdf))
    info = reader.metadata
    xmp = xmp_of(reader)
    # The PDF/A identification.
    assert (one(xmp, "pdfaid:part"), one(xmp, "pdfaid:conformance")) == ("2", "B")
    # Dublin Core, XMP and PDF entries say what the information dictionary says.
    digest = content_sha256(content)
    assert info["/Title"] == one(xmp, "dc:title/rdf:Alt/rdf:li") == "Executed batch record B-REC-1"
    assert info["/Author"] == one(xmp, "dc:creator/rdf:Seq/rdf:li") == "Batchline"
    assert (
        info["/Subject"] == one(xmp, "dc:description/rdf:Alt/rdf:li") == f"batchline-content-sha256:{digest}"
    )
    assert info["/Producer"] == one(xmp, "pdf:Producer") and info["/Keywords"] == one(xmp, "pdf:Keywords")
    assert info["/Creator"] == one(xmp, "xmp:CreatorTool")
    generated = dt.datetime.fromisoformat(content["generated_at"].replace("Z", "+00:00")).replace(
        microsecond=0
    )
    for key, prop in (("/CreationDate", "xmp:CreateDate"), ("/ModDate", "xmp:ModifyDate")):
        assert info_date(info[key]) == generated == dt.datetime.fromisoformat(one(xmp, prop))
    # An sRGB output intent with its ICC profile (a monitor RGB profile, version 4 or below 5).
    (intent,) = [x.get_object() for x in reader.trailer["/Root"]["/OutputIntents"]]
    assert intent["/S"] == "/GTS_PDFA1" and intent["/OutputConditionIdentifier"] == "sRGB IEC61966-2.1"
    profile = intent["/DestOutputProfile"].get_object()
    icc = profile.get_data()
    assert profile["/N"] == 3 and icc[12:20] == b"mntrRGB " and icc[8] < 5
    # A document ID; every font embedded, none of the standard 14.
    assert len(reader.trailer["/ID"]) == 2
    used = {}
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            used[font["/BaseFont"]] = font
    assert used and all("/FontFile2" in f["/FontDescriptor"] for f in used.values())
    assert not [name for name in used if any(s in name for s in STANDARD_14)]
    assert all(name.endswith(("DejaVuSansCondensed", "-Bold", "-Oblique")) for name in used)


@pytest.mark.req("BR-01", "BR-03", "DI-07")
def test_the_pdf_is_dated_when_the_record_was_generated_and_reproducible_from_its_content() -> None:
    _people, batch = complete_batch()
    content = record_content(batch)
    pdf = render_pdf(content)
    created = PdfReader(io.BytesIO(pdf)).metadata["/CreationDate"]
    assert not created.startswith("D:2000") and created.startswith(
        "D:" + content["generated_at"][:19].replace("-", "").replace("T", "").replace(":", "")
    )
    # The archived JSON renders to the same bytes (no clock, no random ID), and another record does not.
    assert render_pdf(copy.deepcopy(content)) == pdf
    later = copy.deepcopy(content) | {"generated_at": "2031-01-02T03:04:05.000000Z"}
    other = PdfReader(io.BytesIO(render_pdf(later)))
    assert other.metadata["/CreationDate"].startswith("D:20310102030405")
    assert other.trailer["/ID"][0] != PdfReader(io.BytesIO(pdf)).trailer["/ID"][0]


@pytest.mark.req("BR-01", "DI-02")
def test_nothing_prints_as_none_and_quantities_keep_the_recipes_precision(tmp_path) -> None:
    _people, batch = complete_batch()
    content = record_content(batch) | copy.deepcopy(QUALITY)
    content["yields"][0] |= {"actual": None, "percent": None, "within": None}
    content["dispensed_containers"] = [
        {
            "container": "C-000011",
            "lot": "L-0042",
            "material_code": "PCM",
            "material_name": "Paracetamol",
            "quantity": "0.501300",
            "unit": "kg",
            "tare": None,
        }
    ]
    flat = re.sub(r"\s+", " ", pdf_text(render_pdf(content, time_zone="UTC"), tmp_path))
    assert "None" not in flat.replace("None recorded.", "").replace("None on the batch", "")
    assert not re.search(r"\d\.\d{6} (kg|mg|tablet)", flat)  # no quantity with the ledger's six decimals
    assert "Batch size 100 kg (nominal 100 kg)" in flat
    assert "L-0042 C-000001 10.1 kg" in flat and "C-000011 L-0042 PCM Paracetamol 0.5013 kg" in flat
    assert "Compression not recorded 100 kg" in flat


@pytest.mark.req("BR-01", "S88-04")
def test_a_scaled_number_shows_the_recipes_decimals_not_the_divisions_digits() -> None:
    third = (Decimal(100), Decimal(300))
    assert scaled_text("600", third, True) == "200"
    assert scaled_text("10", (Decimal(100), Decimal(70)), True) == "14.286"
    assert scaled_text("0.50", (Decimal(1), Decimal(1)), True) == "0.50"
    assert scaled_text("0.5", third, False) == "0.5"
    definition = {"unit": "mg", "scales": True, "specification": {"low": "570", "high": "631"}}
    assert limits_text(definition, third, "specification") == "190–210.333 mg"
    assert amount("0.501300", "kg") == "0.5013 kg" and amount("12.000000", "kg", places=3) == "12.000 kg"
    assert amount(None, "kg") == "" and amount("1,500", "kg") == "1,500 kg"


@pytest.mark.req("BR-01", "DI-02")
def test_long_codes_and_texts_wrap_inside_their_column(tmp_path) -> None:
    fonts()
    width = 0.13 * 770 - 4  # the exceptions table's code column
    lines = wrap("CRITICAL_OUT_OF_SPECIFICATION REFUSED_PREDECESSOR_OPEN", width)
    from reportlab.pdfbase.pdfmetrics import stringWidth

    assert all(stringWidth(line, REGULAR, 7) <= width for line in lines)
    assert "".join(lines).replace(" ", "") == "CRITICAL_OUT_OF_SPECIFICATIONREFUSED_PREDECESSOR_OPEN"
    assert lines[0].endswith("_")  # broken after an underscore, not in the middle of a word
    # In the document: no word of the code column reaches into the next column.
    _people, batch = complete_batch()
    content = record_content(batch)
    content["exceptions"][1]["code"] = "REFUSED_PREDECESSOR_OPEN_TOO_LONG_FOR_ITS_COLUMN"
    path = tmp_path / "record.pdf"
    path.write_bytes(render_pdf(content, time_zone="UTC"))
    boxes = subprocess.run(["pdftotext", "-bbox", str(path), "-"], capture_output=True, text=True).stdout
    boxes = next(page for page in boxes.split("<page ") if ">Category</word>" in page)
    words = re.findall(r'xMin="([\d.]+)" yMin="[\d.]+" xMax="([\d.]+)" yMax="[\d.]+">([^<]*)</word>', boxes)
    category = next(float(x) for x, _x2, w in words if w == "Category")
    code = max(float(x) for x, _x2, w in words if w == "Code" and float(x) < category)
    in_column = [
        (float(x2), w)
        for x, x2, w in words
        if code - 1 <= float(x) < category and w in "REFUSED_PREDECESSOR_OPEN_TOO_LONG_FOR_ITS_COLUMN"
    ]
    assert "".join(w for _x2, w in in_column).count("TOO_LONG_FOR_ITS_COLUMN") == 1
    assert max(x2 for x2, _w in in_column) < category
