"""The batch record's sampling section holds each sample's request to the LIMS and its results."""

from __future__ import annotations

import re

import pytest
from django.test import override_settings
from lxml import etree

from batchline.reports import batchml
from batchline.reports.content import record_content
from batchline.reports.pdf import render_pdf
from batchline.rules import bindings
from batchline.signatures.status import lean_record
from tests.conftest import make_user
from tests.lims.plant import LIMS, make_lims_plant, new_batch, post_json, result, run_to_complete
from tests.reports.test_record_page import words
from tests.reports.test_record_pdfa import qpdf_check
from tests.reports.test_records import pdf_text

pytestmark = pytest.mark.django_db


@pytest.fixture
def recorded(db):
    """A batch run to its end with LIMS results: the blend IPC in specification (recorded on its
    step), the lot sample's water content, the API content out of specification after completion,
    and the retain sample with no result yet."""
    people, recipe, lot = make_lims_plant()
    with override_settings(OUTBOX_DESTINATIONS=LIMS):
        batch = new_batch(people, recipe)
        samples = run_to_complete(people, batch, lot, blend=("99.0", ("1005", "mg/g")))
    assert post_json(people["lims"], result(samples["lot"], "0.21", rid="W-1")).status_code == 201
    assert post_json(people["lims"], result(samples["content"], "11.2", "kg", rid="C-1")).status_code == 201
    return people, batch


@pytest.mark.req("BR-01", "IPC-01", "DI-10")
def test_the_json_record_holds_each_samples_request_and_results(recorded) -> None:
    _people, batch = recorded
    content = record_content(batch)
    samples = {s["code"]: s for s in content["samples"]}
    top = samples["LB-001-S01"]
    assert top["request"]["message"] == "batchline:lims:sample:LB-001-S01"
    assert top["request"]["state"] == "pending" and top["request"]["delivered_at"] is None
    [r] = top["results"]
    assert (
        r["result_id"],
        r["text"],
        r["unit"],
        r["specification"],
        r["in_specification"],
        r["filled_step"],
    ) == (
        "LIMS-LB-001-S01",
        "99.0",
        "%",
        "95–105 %",
        True,
        True,
    )
    assert r["by"]["username"] == "lims" and r["by"]["name"] == "LIMS Interface"
    [late] = samples["LB-001-S04"]["results"]
    assert (late["in_specification"], late["exception_code"], late["filled_step"]) == (
        False,
        "LAB_OUT_OF_SPECIFICATION",
        False,
    )
    assert samples["LB-001-S05"]["results"] == []  # the retain sample: nothing from the laboratory yet
    # Each result's audit entries belong to the record's trail.
    assert {e["record_type"] for e in content["audit_trail"]} >= {"lims.labresult", "lims.samplerequest"}
    # The laboratory's values on the blend step read the same in the full record and the lean one.
    blend = next(s for s in content["steps"] if s["key"] == "blend_ipc")
    assert [(v["label"], v["shown"], v["specification"]) for v in blend["values"]] == [
        ("Blend assay, sample LB-001-S01", "99", "95–105 %"),
        ("Blend assay, sample LB-001-S02", "100.5", "95–105 %"),
    ]
    assert bindings.approved_record(lean_record(batch)) == bindings.approved_record(content)


@pytest.mark.req("BR-01", "A11-11", "IPC-01")
def test_the_record_page_and_the_pdf_print_the_requests_and_results(recorded, login, tmp_path) -> None:
    _people, batch = recorded
    page = login(make_user("auditor", ["auditor"])).get(f"/batches/{batch.number}/record/").content.decode()
    section = page.split('data-testid="record-sampling"', 1)[1].split("</section>", 1)[0]
    table = words(section.split('data-testid="record-lab-results"', 1)[1])
    assert "LB-001-S02 requested" in table and "waiting to be delivered" in table
    assert "LIMS-LB-001-S02: Blend assay 1005 % " not in table  # 1005 mg/g, converted:
    assert "LIMS-LB-001-S02: Blend assay 1005 mg/g = 100.5 % 95–105 % within specification" in table
    assert re.search(
        r"C-1: API content of the blend 11.2 kg 9.5–10.5 kg out of specification ; exception #\d+ ", table
    )
    assert "LB-001-S05 requested" in table and "no result yet" in table
    assert 'class="out"' in section
    pdf = render_pdf(record_content(batch), time_zone="UTC")
    flat = re.sub(r"\s+", " ", pdf_text(pdf, tmp_path))
    sampling = flat.split("10. Sampling", 1)[1].split("11. Persons", 1)[0]
    for needle in (
        "Laboratory requests and results",
        "W-1: Water content 0.21 %",
        "≤ 0.5 %",
        "OUT OF SPECIFICATION",
        "LAB_OUT_OF_SPECIFICATION",
        "recorded on its step",
        "LB-001-S05 requested",  # its request waiting to be delivered (the text wraps in its column)
        "no result yet",
        "LIMS Interface",
    ):
        assert needle in sampling, needle
    assert "No syntax or stream encoding errors found" in qpdf_check(pdf, tmp_path)


@pytest.mark.req("BR-02", "S88-08", "IPC-01")
def test_the_batchml_carries_each_result_as_a_sample_test_result_and_validates(recorded) -> None:
    _people, batch = recorded
    xml = batchml.render_batchml(record_content(batch))
    assert batchml.validate(xml) == []
    ns = {"b": batchml.NS}
    doc = etree.fromstring(xml)
    found = [
        (
            r.findtext("b:EntryID", namespaces=ns),
            r.findtext("b:TestDisposition", namespaces=ns),
            r.findtext("b:Results/b:ValueString", namespaces=ns),
            r.findtext("b:Results/b:UnitOfMeasure", namespaces=ns),
        )
        for r in doc.findall("b:Samples/b:Sample/b:SampleTest/b:SampleTestResult", ns)
    ]
    assert found == [
        ("LIMS-LB-001-S01", "pass", "99.0", "%"),
        ("LIMS-LB-001-S02", "pass", "1005", "mg/g"),
        ("W-1", "pass", "0.21", "%"),
        ("C-1", "fail", "11.2", "kg"),
    ]
