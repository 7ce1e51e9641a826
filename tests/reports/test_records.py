"""The executed batch record as PDF, JSON and BatchML, through the command and the record page.

The PDF's text is read with poppler's ``pdftotext``: ``./dev test`` already
installs poppler-utils for the label tests, so no Python PDF library is added
for tests alone, and poppler is an independent reader of what ReportLab wrote.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from batchline.reports import batchml
from batchline.reports.content import content_sha256, record_content
from batchline.reports.documents import render
from batchline.reports.pdf import render_pdf
from tests.conftest import CI
from tests.reports.helpers import complete_batch

pytestmark = pytest.mark.django_db

# What the quality work will add; rendered now so merging it is adding data, not layout.
QUALITY = {
    "yields": [
        {
            "operation": "Compression",
            "actual": "98.6",
            "theoretical": "100",
            "percent": "98.6",
            "low": "95",
            "high": "101",
            "unit": "kg",
            "within": True,
        }
    ],
    "reconciliation": [
        {
            "lot": "L-0042",
            "material": "PCM Paracetamol",
            "issued": "12",
            "consumed": "10.1",
            "returned": "1.9",
            "waste": "0",
            "difference": "0",
            "unit": "kg",
            "within": True,
        }
    ],
    "deviations": [
        {
            "number": "DEV-2026-0007",
            "title": "Tablet weight out of specification",
            "classification": "minor",
            "state": "closed",
            "description": "Weight 2 read 640 mg.",
            "immediate_action": "Re-weighed.",
            "root_cause": "Transcription error.",
            "impact": "None on the batch.",
            "capa": "CAPA-12",
            "signatures": ["Quinn Reviewer — Approved — 2026-11-25 10:00:00 UTC"],
        }
    ],
    "review": {
        "stages": [
            {
                "stage": "QA review",
                "meaning": "reviewed",
                "signer": "Quinn Reviewer",
                "at": "2026-11-25T10:00:00.000000Z",
                "manifestation": "Quinn Reviewer — Reviewed — 2026-11-25 10:00:00 UTC",
            }
        ],
        "disposition": "released",
        "disposition_at": "2026-11-25T10:05:00.000000Z",
    },
}


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    if shutil.which("pdftotext") is None:
        message = (
            "pdftotext is missing: apt-get install poppler-utils (./dev test does this when run as root)"
        )
        if CI:
            pytest.fail(message)
        pytest.skip(message)
    path = tmp_path / "record.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True)
    return out.stdout.decode()


@pytest.mark.req("BR-01", "A11-11", "A11-12", "P11-13", "EQ-05")
def test_the_pdf_holds_every_item_of_21_cfr_211_188_b(tmp_path) -> None:
    _people, batch = complete_batch()
    content = record_content(batch) | copy.deepcopy(QUALITY)
    text = pdf_text(render_pdf(content, time_zone="UTC"), tmp_path)
    flat = re.sub(r"\s+", " ", text)
    pages = len(re.findall(r"Page \d+ of (\d+)", text))
    # Header, page x of y, generation time and the content hash on every page.
    assert "Paracetamol 500 mg tablets (PCM500)" in flat and "PCM-REC version 1" in flat
    assert "Batch size 100 kg (nominal 100 kg)" in flat and "Demo Pharma Plant 1" in flat
    assert pages > 1 and f"Page {pages} of {pages}" in text
    assert text.count(f"Content SHA-256: {content_sha256(content)}") == pages
    assert f"generated {content['generated_at'][:10]}" in text
    expected = {
        "(1) dates": content["steps"][0]["started_at"][:10],
        "(2) equipment": "GRAN-01 High-shear granulator 1",
        "(3) lots": "L-0042",
        "(4) weights and measures": "10.1 kg",
        "(5) in-process results": "Weight 1 598 mg 570–630 mg yes",
        "(6) line clearance": "Previous product removed; Documents removed",
        "(7) yield": "98.6 %",
        "(8) labeling": "8. Labeling control records",
        "(9) containers and closures": "9. Drug product containers and closures",
        "(10) sampling": "10. Sampling",
        "(11) persons": "Sam Supervisor — Verified",
        "(12) investigations": "DEV-2026-0007",
        "(13) label examinations": "(211.188(b)(8), (13))",
    }
    for item, needle in expected.items():
        assert needle in flat, item
    for n in range(1, 14):
        assert f"({n}) " in flat  # the index row of each item
    # Every value, its correction with the changed-value marker, and the signatures' manifestations.
    assert "640 ‡ changed after entry" in flat and "604 correction: transcription error" in flat
    assert "Olga Operator — Performed" in flat and "Olga Operator (operator)" in flat
    assert "OUT_OF_SPECIFICATION" in flat and "CORRECTION" in flat
    assert "Appendix A. Audit trail of this batch" in flat
    assert content["audit_trail"] and all(f"{a['hash'][:16]}…" in flat for a in content["audit_trail"])


@pytest.mark.req("BR-01")
def test_sections_without_data_say_none_recorded(tmp_path) -> None:
    _people, batch = complete_batch()
    flat = re.sub(r"\s+", " ", pdf_text(render_pdf(record_content(batch)), tmp_path))
    for section in (
        "7. Yields",
        "9. Drug product containers",
        "12. Deviations",
        "13. Review",
    ):
        after = flat.split(section, 1)[1]
        assert (
            after.split(")", 1)[-1].lstrip().startswith("None recorded.") or "None recorded." in after[:120]
        ), section
    # The sections the step kinds fill say why this batch has none (its recipe has no such step).
    assert "No sampling is part of this batch's master recipe: no samples were taken." in flat
    assert "No labelling is part of this batch's master recipe: no labels were issued to it." in flat


@pytest.mark.req("S88-08", "BR-02")
def test_the_batchml_export_validates_against_mesas_schema() -> None:
    where = batchml.schema_dir() / batchml.SCHEMA_FILE
    if not where.is_file():
        message = f"{where} is missing. {batchml.WHERE_TO_GET}"
        if CI or os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    _people, batch = complete_batch()
    xml = render(record_content(batch), "batchml").data
    assert batchml.validate(xml) == []
    assert b"<BatchID>B-REC-1</BatchID>" in xml and b"<PrechangeData>" in xml
    # The check is real: the same document with its elements out of order is refused.
    broken = xml.replace(b"<BatchID>B-REC-1</BatchID>", b"").replace(
        b"<RecordStatus>", b"<BatchID>B-REC-1</BatchID><RecordStatus>"
    )
    broken = broken.replace(b"<ObjectType>Batch Production Record</ObjectType>", b"", 1)
    assert batchml.validate(broken)


@pytest.mark.req("P11-02", "DI-02")
def test_a_gs1_group_separator_in_a_stored_value_exports_legibly_instead_of_crashing(no_triggers) -> None:
    """Every GS1 DataMatrix scan carries ASCII 29; XML 1.0 cannot, so BatchML shows it as "␝"."""
    from batchline.execution.models import StepValue
    from batchline.reports.archive import archive_export

    _people, batch = complete_batch()
    value = StepValue.objects.filter(step__batch=batch, name="w1").first()
    with connection.cursor() as cursor:  # a scan stored as the scanner sent it
        cursor.execute(
            "UPDATE execution_stepvalue SET text = %s WHERE id = %s", ["(01)0761\x1d(10)L-42", value.pk]
        )
    content = record_content(batch)
    xml = render(content, "batchml").data
    assert "(01)0761\u241d(10)L-42".encode() in xml
    if (batchml.schema_dir() / batchml.SCHEMA_FILE).is_file():
        assert batchml.validate(xml) == []
    # The JSON record keeps the exact character.
    assert any(v["text"] == "(01)0761\x1d(10)L-42" for s in content["steps"] for v in s["values"])
    data, manifest = archive_export(batch)
    assert data[:2] == b"PK" and len(manifest) == 64
    assert batchml.xml_text("a\x00b\x1fc\td\ne\ud800") == "a\u2400b\u241fc\td\ne\ufffd"


@pytest.mark.req("BR-02", "P11-02")
def test_the_json_round_trips_to_the_same_content_and_hash() -> None:
    _people, batch = complete_batch()
    content = record_content(batch)
    loaded = json.loads(render(content, "json").data)
    assert loaded == content
    assert content_sha256(loaded) == content_sha256(content)
    # Every value, signature and exception the database holds is in it.
    values = [v for s in loaded["steps"] for v in s["values"]]
    assert len(values) == 7 and sum(v["changed_after_entry"] for v in values) == 2
    assert len([x for s in loaded["steps"] for x in s["signatures"]]) + len(loaded["signatures"]) == 4
    assert [e["code"] for e in loaded["exceptions"]] == [
        "CRITICAL_OUT_OF_SPECIFICATION",
        "OUT_OF_SPECIFICATION",
        "CORRECTION",
    ]
    # The critical one stopped the batch and carries QA's signed disposition; the others are open.
    critical = loaded["exceptions"][0]
    assert (critical["category"], critical["blocks"]) == ("critical_value", True)
    assert critical["disposition"]["decision"] == "accepted"
    assert "Alex Approver — Approved — " in critical["disposition"]["manifestation"]
    assert [e["disposition"] for e in loaded["exceptions"][1:]] == [None, None]
    assert loaded["deviations"] == [] and loaded["review"] is None


def test_the_record_is_read_in_a_fixed_handful_of_queries() -> None:
    _people, batch = complete_batch()
    with CaptureQueriesContext(connection) as small:
        record_content(batch)
    # A fixed set of reads (steps, values, signatures, exceptions and dispositions, deviations,
    # review stages, yields, reconciliation, materials, equipment, output, audit trail, the site's
    # notation the values are shown in), none per step.
    assert len(small) <= 24, [q["sql"][:80] for q in small.captured_queries]


@pytest.mark.req("BR-01", "BR-02")
def test_the_command_writes_each_format(tmp_path) -> None:
    _people, _batch = complete_batch()
    for fmt, start in (("pdf", b"%PDF-"), ("json", b"{"), ("batchml", b"<?xml")):
        out = tmp_path / f"record.{fmt}"
        call_command("batch-record", "B-REC-1", "--format", fmt, "-o", str(out))
        assert out.read_bytes().startswith(start)
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No batch"):
        call_command("batch-record", "B-NOPE", "-o", str(tmp_path / "x.pdf"))


@pytest.mark.req("BR-01", "P11-02")
def test_the_record_page_links_the_pdf_and_an_auditor_downloads_it(client, login) -> None:
    complete_batch()
    from tests.conftest import make_user

    auditor = make_user("auditor", ["auditor"])
    c = login(auditor)
    page = c.get("/batches/B-REC-1/record/")
    href = re.search(rb'id="record-pdf" href="([^"]+)"', page.content)
    assert page.status_code == 200 and href
    response = c.get(href.group(1).decode())
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert 'filename="batch-record-B-REC-1.pdf"' in response["Content-Disposition"]
    assert response.content.startswith(b"%PDF-")
    assert c.get("/batches/B-REC-1/record/docx/").status_code == 404
    outsider = login(make_user("outsider", []))
    assert outsider.get(href.group(1).decode()).status_code == 403


@pytest.mark.req("BR-01", "DI-02")
def test_an_investigation_longer_than_a_page_prints_whole_over_the_next_rows(tmp_path) -> None:
    _people, batch = complete_batch()
    content = record_content(batch) | copy.deepcopy(QUALITY)
    words = [f"w{i:05d}" for i in range(12000)]  # about 30 pages of one cell
    content["deviations"][0]["investigation"] = " ".join(words)
    flat = re.sub(r"\s+", " ", pdf_text(render_pdf(content, time_zone="UTC"), tmp_path))
    assert "w00000" in flat and "w11999" in flat  # all of it, nothing cut


@pytest.mark.req("BR-01", "DI-02", "P11-05")
def test_the_audit_appendix_reads_field_old_new_and_shortens_long_values(tmp_path) -> None:
    _people, batch = complete_batch()
    content = record_content(batch)
    long = " ".join(f"w{i:05d}" for i in range(12000))
    content["audit_trail"][0]["changes"] = json.dumps({"note": [None, long], "state": ["running", "held"]})
    flat = re.sub(r"\s+", " ", pdf_text(render_pdf(content, time_zone="UTC"), tmp_path))
    assert "state: running → held" in flat and "state: pending → running" in flat
    assert "note: w00000" in flat and "w11999" not in flat
    assert f"[{len(long) - 160:,} more characters: the full value is in the JSON record]" in flat
    appendix = flat.split("Appendix A.", 1)[1]
    assert '{"note"' not in appendix and '"state": [' not in appendix  # rows, not the entry's raw JSON
    assert json.loads(content["audit_trail"][0]["changes"])["note"][1] == long  # the record keeps it whole
