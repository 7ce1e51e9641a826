"""Stored texts through every export: investigations in full, and any text without a crash (BR-01, P11-02).

What a person can store is carried by each format as it allows: the JSON exactly; BatchML (XML 1.0)
with control characters as their visible pictures, valid against MESA's V0700 schema; the PDF with
a control character as its name (‹GS›) and a character the embedded font has no glyph for as its
code point (‹U+4E2D›); the archive verifies. Lone surrogates cannot be stored at all (UTF-8 cannot
encode them; SQLite and PostgreSQL refuse them), nor NUL on PostgreSQL, so they are not among the
texts tried.
"""

from __future__ import annotations

import copy
import io
import json
import re
import zipfile

import pytest
from django.core.management import call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from batchline.quality import services as q
from batchline.reports import batchml
from batchline.reports.content import record_content
from batchline.reports.documents import render
from batchline.reports.pdf import render_pdf
from tests.conftest import CI, make_user
from tests.execution.test_engine import A, sign
from tests.reports.helpers import complete_batch
from tests.reports.test_record_pdfa import qpdf_check
from tests.reports.test_records import pdf_text

pytestmark = pytest.mark.django_db

INVESTIGATION = (
    "Balance BAL-07 read 640 mg for tablet 2; the operator re-weighed the same tablet at 604 mg. "
    "The balance's display log shows a transient reading while the draught shield was open."
)
# Every C0 control character but NUL (PostgreSQL cannot store it), DEL, right-to-left scripts,
# a combining accent, emoji, CJK (no glyph in DejaVu) and a long run.
ODD = (
    "".join(chr(c) for c in range(1, 32))
    + "\x7f שלום עולם مرحبا e\u0301 😀🧪 中文批记录 "
    + "long-"
    + "x" * 5000
)


def schema_or_skip() -> None:
    if not (batchml.schema_dir() / batchml.SCHEMA_FILE).is_file():
        message = f"{batchml.schema_dir() / batchml.SCHEMA_FILE} is missing. {batchml.WHERE_TO_GET}"
        if CI:
            pytest.fail(message)
        pytest.skip(message)


def investigated(batch, *, description: str, investigation: str):
    """A deviation on the batch, raised, investigated and submitted by QA, through the services."""
    reviewer = make_user("reviewer", ["qa_reviewer"], full_name="Quinn Reviewer")
    dev = q.deviation_raise(
        actor=A(reviewer),
        signer=sign(reviewer, "performed"),
        title="Tablet weight out of specification",
        classification="minor",
        description=description,
        batches=[batch.number],
    )
    dev = q.deviation_transition(
        actor=A(reviewer), signer=sign(reviewer, "reviewed"), deviation=dev, command="investigate"
    )
    return q.deviation_transition(
        actor=A(reviewer),
        signer=sign(reviewer, "performed"),
        deviation=dev,
        command="submit",
        fields={
            "investigation": investigation,
            "root_cause": "Reading taken with the draught shield open.",
            "impact": "None on the batch: the re-weighed value is within specification.",
            "capa_reference": "CAPA-2026-031",
        },
    )


def comments(xml: bytes) -> dict[str, str]:
    root = etree.fromstring(xml)
    ns = {"b": batchml.NS}
    return {
        c.findtext("b:EntryID", namespaces=ns): c.findtext("b:CommentText", namespaces=ns)
        for c in root.iterfind(".//b:Comments/b:Comment", ns)
    }


@pytest.mark.req("BR-01", "BR-02", "DEV-03", "S88-08")
def test_a_deviations_investigation_is_in_the_json_the_pdf_and_the_batchml(tmp_path) -> None:
    schema_or_skip()
    _people, batch = complete_batch()
    dev = investigated(batch, description="Weight 2 read 640 mg.", investigation=INVESTIGATION)
    content = record_content(batch)
    (shown,) = content["deviations"]
    assert (shown["investigation"], shown["capa"]) == (INVESTIGATION, "CAPA-2026-031")
    flat = re.sub(r"\s+", " ", pdf_text(render_pdf(content, time_zone="UTC"), tmp_path))
    section = flat.split("12. Deviations and investigations", 1)[1].split("13. Review", 1)[0]
    assert f"Investigation {INVESTIGATION}" in section
    assert (
        "Root cause Reading taken with the draught shield open." in section
        and "CAPA CAPA-2026-031" in section
    )
    xml = render(content, "batchml").data
    assert batchml.validate(xml) == []
    texts = comments(xml)
    assert texts[f"deviation-{dev.pk}-investigation"] == INVESTIGATION
    assert texts[f"deviation-{dev.pk}-capa"] == "CAPA-2026-031"


@pytest.mark.req("P11-02", "P11-03", "DI-02", "BR-02")
def test_any_stored_text_goes_through_every_export_and_the_archive_verifies(tmp_path, capsys) -> None:
    schema_or_skip()
    _people, batch = complete_batch()
    investigated(batch, description=f"begin {ODD} end", investigation=f"begin {ODD} end")
    content = record_content(batch)
    # JSON: exactly what was stored.
    loaded = json.loads(render(content, "json").data)
    assert loaded["deviations"][0]["investigation"] == f"begin {ODD} end"
    # BatchML: valid, control characters as their pictures, the rest as stored.
    xml = render(content, "batchml").data
    assert batchml.validate(xml) == []
    text = next(t for k, t in comments(xml).items() if k.endswith("investigation"))
    assert text == "begin " + batchml.xml_text(ODD) + " end" and "\u241d" in text and "中文批记录" in text
    # PDF: sound, every character accounted for.
    pdf = render_pdf(content, time_zone="UTC")
    qpdf_check(pdf, tmp_path)
    flat = pdf_text(pdf, tmp_path)
    assert "‹GS›" in flat and "‹US›" in flat and "‹U+4E2D›" in flat and "‹U+1F600›" in flat and "é" in flat
    # The archive: exported and verified by the commands.
    out = tmp_path / "archive.zip"
    call_command("archive", "export", batch.number, "-o", str(out))
    call_command("archive", "verify", str(out))
    assert f"OK: archive of batch {batch.number} verifies" in capsys.readouterr().out
    with zipfile.ZipFile(io.BytesIO(out.read_bytes())) as zf:
        archived = json.loads(zf.read("record.json"))
    assert archived["deviations"][0]["description"] == f"begin {ODD} end"


STORABLE = st.text(
    alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), min_size=1, max_size=300
)


@pytest.mark.req("P11-02", "DI-02", "BR-02")
def test_no_stored_text_in_a_value_an_exception_or_a_deviation_crashes_an_export() -> None:
    schema_or_skip()
    _people, batch = complete_batch()
    base = record_content(batch)

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(value=STORABLE, message=STORABLE, investigation=STORABLE)
    def exports(value: str, message: str, investigation: str) -> None:
        content = copy.deepcopy(base)
        content["steps"][4]["values"][0]["text"] = value
        content["exceptions"][0]["message"] = message
        content["deviations"] = [
            {
                "id": 1,
                "number": "DEV-1",
                "title": message[:200],
                "classification": "minor",
                "state": "investigation",
                "description": value,
                "immediate_action": "",
                "investigation": investigation,
                "root_cause": "",
                "impact": "",
                "capa": "",
                "links": [],
                "signatures": [],
            }
        ]
        assert json.loads(render(content, "json").data) == content
        assert batchml.validate(render(content, "batchml").data) == []
        assert render_pdf(content).startswith(b"%PDF-1.7")

    exports()
