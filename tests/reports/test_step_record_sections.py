"""The batch record's sampling, output and labeling sections, from a batch run through the step kinds."""

from __future__ import annotations

import base64
import hashlib
import json
import re

import pytest
from lxml import etree

from batchline.reports import batchml
from batchline.reports.content import record_content
from batchline.reports.pdf import render_pdf
from batchline.rules import bindings
from batchline.signatures.status import lean_record
from tests.execution.steps_plant import make_steps_plant, run_all
from tests.reports.test_record_pdfa import qpdf_check
from tests.reports.test_records import pdf_text

pytestmark = pytest.mark.django_db


@pytest.fixture
def batch(db):
    people, recipe = make_steps_plant()
    return run_all(people, recipe)


@pytest.mark.req("BR-01", "BR-02", "IPC-01", "LBL-03", "GEN-01")
def test_the_json_record_holds_the_samples_output_and_labeling_records(batch) -> None:
    content = record_content(batch)
    json.dumps(content)  # JSON-ready
    samples = content["samples"]
    assert [s["code"] for s in samples] == ["R-001-S01", "R-001-S02", "R-001-S03"]
    first = samples[0]
    assert (first["source"], first["position"], first["quantity"], first["unit"]) == (
        "BLEND-01",
        "top",
        "5.200000",
        "g",
    )
    assert (first["test"], first["method"], first["by"]["username"]) == (
        "Blend uniformity",
        "SOP-QC-021",
        "operator",
    )
    assert first["label_prints"] and first["label_prints"][0]["reprint"] is False
    assert content["samples_asked"] == [
        {"step": "sample_blend", "samples": 2, "test": "Blend uniformity"},
        {"step": "sample_tablets", "samples": 1, "test": "Assay and dissolution"},
    ]
    assert [(o["quantity"], o["unit"]) for o in content["output"]] == [
        ("500.000000", "tablet"),
        ("490.000000", "tablet"),
    ]
    assert all(o["label_prints"] for o in content["output"])
    labels = content["labelling"]
    issue = labels["issued"][0]
    png = base64.b64decode(issue["specimen_png"])
    assert hashlib.sha256(png).hexdigest() == issue["specimen_sha256"]
    assert issue["content"]["batch"] == "R-001" and issue["content"]["storage"] == "Store below 25 °C, dry"
    assert labels["reconciliations"][0]["within"] is True
    assert labels["examinations"][0]["passed"] is True
    # The signatures of the labelling step are valid, and the lean reading judges them the same.
    step = next(s for s in content["steps"] if s["key"] == "labels")
    assert {r["type"] for r in step["records"]} == {"labels_issued", "labels_reconciled", "labels_examined"}
    assert all(s["status"]["state"] == "valid" for s in step["signatures"])
    assert bindings.approved_record(lean_record(batch)) == bindings.approved_record(content)


@pytest.mark.req("BR-01", "A11-11", "LBL-03", "IPC-01")
def test_the_pdf_prints_each_sample_the_output_the_labels_with_their_specimen_and_the_examination(
    batch, tmp_path
) -> None:
    content = record_content(batch)
    pdf = render_pdf(content, time_zone="UTC")
    flat = re.sub(r"\s+", " ", pdf_text(pdf, tmp_path))
    sampling = flat.split("10. Sampling", 1)[1].split("11. Persons", 1)[0]
    for needle in (
        "R-001-S01",
        "R-001-S02",
        "R-001-S03",
        "Blend uniformity",
        "SOP-QC-021",
        "BLEND-01",
        "top",
        "bottom",
    ):
        assert needle in sampling, needle
    assert "step sample_blend: 2 for Blend uniformity" in flat
    assert "5.2 g (asked 5)" in sampling
    assert "Output recorded" in flat and re.search(r"output C-0+\d+ R-001 500 tablet", flat)
    labeling = flat.split("8. Labeling control records", 1)[1].split("9. Drug product", 1)[0]
    issue = content["labelling"]["issued"][0]
    for needle in (
        "100 labels issued",
        "Record tablets 100 mg (RECT), batch R-001, 100 tablet per container",
        "storage: Store below 25 °C, dry",
        f"Specimen SHA-256 {issue['specimen_sha256']}",
        "Specimen of the label issued",
        "Labeling reconciliation",
        "Label matches the specimen pass",
        "5 units examined",
    ):
        assert needle in labeling, needle
    # The specimen is embedded as an image: the PDF holds an image XObject, and stays sound.
    assert b"/Subtype /Image" in pdf
    assert "No syntax or stream encoding errors found" in qpdf_check(pdf, tmp_path)
    assert "None" not in flat.replace("None recorded.", "")
    assert re.search(r"± ?2 yes", flat)  # the limit as the recipe wrote it (not ± 2.000000)


@pytest.mark.req("BR-02", "S88-08", "IPC-01")
def test_the_batchml_carries_the_samples_and_the_labeling_events_and_validates(batch) -> None:
    xml = batchml.render_batchml(record_content(batch))
    assert batchml.validate(xml) == []
    doc = etree.fromstring(xml)
    ns = {"b": batchml.NS}
    samples = doc.findall("b:Samples/b:Sample", ns)
    assert [s.findtext("b:EntryID", namespaces=ns) for s in samples] == [
        "R-001-S01",
        "R-001-S02",
        "R-001-S03",
    ]
    first = samples[0]
    assert first.findtext("b:SampleTest/b:TestName", namespaces=ns) == "Blend uniformity"
    assert first.findtext("b:SampleSize/b:QuantityString", namespaces=ns) == "5.200000"
    assert first.findtext("b:EquipmentID", namespaces=ns) == "BLEND-01"
    events = {
        e.findtext("b:EntryID", namespaces=ns).rsplit("-", 1)[0] for e in doc.findall("b:Events/b:Event", ns)
    }
    assert {"labels-issued", "labels-reconciled", "labels-examined", "produce"} <= events
    assert doc.find("b:Comments", ns) is None  # no section is empty


@pytest.mark.req("BR-02", "S88-08")
def test_an_empty_section_says_why_in_batchml_too(db) -> None:
    people, recipe = make_steps_plant()
    from tests.execution.test_engine import new_batch

    batch = new_batch(people, recipe, number="R-009", quantity="1000")
    content = record_content(batch)
    xml = batchml.render_batchml(content)
    assert batchml.validate(xml) == []
    texts = [c.text for c in etree.fromstring(xml).iter(f"{{{batchml.NS}}}CommentText")]
    assert (
        "Sampling: Not recorded yet: step sample_blend, sample_tablets is not complete (batch released)."
        in texts
    )
    assert any(t.startswith("Labeling: Not recorded yet: step labels") for t in texts)


@pytest.mark.req("BR-01", "LBL-03", "IPC-01", "P11-02")
def test_the_record_page_shows_the_labels_with_their_specimen_the_output_and_the_samples(
    batch, client
) -> None:
    from tests.conftest import make_user

    client.force_login(make_user("auditor", ["auditor"]))
    page = client.get(f"/batches/{batch.number}/record/")
    assert page.status_code == 200
    html = page.content.decode()
    issue = record_content(batch)["labelling"]["issued"][0]
    assert f'src="data:image/png;base64,{issue["specimen_png"]}"' in html
    assert "100 labels issued for step labels" in html and "Store below 25 °C, dry" in html
    assert "R-001-S01" in html and "Blend uniformity" in html and "Label matches the specimen: pass" in html


@pytest.mark.req("BR-01")
def test_the_record_page_says_why_a_section_is_empty(db, client) -> None:
    from tests.conftest import make_user
    from tests.execution.test_engine import new_batch

    people, recipe = make_steps_plant()
    batch = new_batch(people, recipe, number="R-009", quantity="1000")
    client.force_login(make_user("auditor", ["auditor"]))
    html = client.get(f"/batches/{batch.number}/record/").content.decode()
    assert "Not recorded yet: step sample_blend, sample_tablets is not complete (batch released)." in html
