"""Results as B2MML V0700 OperationsTest: validated, applied all or none, answered with an Acknowledge.

Every OperationsTest document these tests send is checked with lxml against MESA's schemas first
(the valid ones valid, the broken ones not), and so is every answer Batchline gives.
"""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from lxml import etree

from batchline.audit.models import AuditEntry
from batchline.execution.models import BatchException
from batchline.lims import b2mml
from batchline.lims.models import LabResult
from tests.lims.plant import (
    NS,
    blend_samples,
    make_lims_plant,
    new_batch,
    operations_test,
    post_xml,
    result,
    valid,
)

pytestmark = pytest.mark.django_db

PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


@pytest.fixture
def plant(db):
    return make_lims_plant()


def last_entry() -> int:
    return AuditEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0


def answer(response) -> etree._Element:
    """The Acknowledge, valid against V0700, as a tree."""
    assert response["Content-Type"].startswith("application/xml")
    assert valid(response.content), response.content.decode()
    return etree.fromstring(response.content, PARSER)


def lxml_accepts(document: bytes) -> bool:
    """Whether lxml parses and validates ``document``: libxml2 stops a bomb's amplification while
    parsing, and cannot validate a tree holding an unexpanded entity (it raises)."""
    try:
        return valid(document)
    except (etree.XMLSyntaxError, etree.XMLSchemaValidateError):
        return False


def q(path: str) -> str:
    return "/".join(f"{{{NS}}}{p}" for p in path.split("/"))


def expression(ack) -> tuple[str, str]:
    e = ack.find(q("DataArea/Acknowledge/ResponseCriteria/ResponseExpression"))
    return e.get("actionCode"), e.text


@pytest.mark.req("S95-04", "A11-07", "IPC-01", "S95-01")
def test_a_valid_operations_test_records_each_result_and_is_acknowledged_with_batchlines_verdict(
    plant,
) -> None:
    people, recipe, _lot = plant
    batch = new_batch(people, recipe)
    top, bottom = blend_samples(people, batch)
    document = operations_test(
        [
            result(top, "99.4", rid="QC-1", comment="Assay by HPLC"),
            result(bottom, "1.062", "dimensionless", rid="QC-2"),
        ]
    )
    assert valid(document)
    response = post_xml(people["lims"], document)
    assert response.status_code == 200
    ack = answer(response)
    assert expression(ack) == ("Accepted", "Accepted: 2 result(s)")
    assert ack.findtext(q("DataArea/Acknowledge/OriginalApplicationArea/BODID")) == "LIMS-BOD-1"
    echoed = [
        (r.findtext(q("ID")), r.findtext(q("TestableObjectID")), r.findtext(q("EvaluatedCriterionResult")))
        for r in ack.findall(q("DataArea/OperationsTestInformation/TestResult"))
    ]
    assert echoed == [("QC-1", top.code, "pass"), ("QC-2", bottom.code, "fail")]  # 1.062 is 106.2 %
    found = {r.result_id: r for r in LabResult.objects.all()}
    assert (found["QC-1"].via, found["QC-1"].comment, found["QC-1"].tested_at.isoformat()) == (
        "b2mml",
        "Assay by HPLC",
        "2026-12-07T09:30:00+00:00",
    )
    assert (
        found["QC-2"].judged_value == Decimal("106.2")
        and found["QC-2"].exception.code == "LAB_OUT_OF_SPECIFICATION"
    )
    assert "exception #" in ack.findall(q("DataArea/OperationsTestInformation/TestResult"))[1].findtext(
        q("Description")
    )
    # The same document again: acknowledged, nothing written a second time.
    mark = last_entry()
    again = answer(post_xml(people["lims"], document))
    assert expression(again)[0] == "Accepted"
    assert all(
        "received before: no second effect" in r.findtext(q("Description"))
        for r in again.findall(q("DataArea/OperationsTestInformation/TestResult"))
    )
    assert last_entry() == mark and LabResult.objects.count() == 2
    assert BatchException.objects.filter(code="LAB_OUT_OF_SPECIFICATION").count() == 1


@pytest.mark.req("A11-07", "S95-04")
def test_a_result_sent_as_json_and_again_as_b2mml_under_its_id_has_one_effect(plant) -> None:
    from tests.lims.plant import post_json

    people, recipe, _lot = plant
    batch = new_batch(people, recipe)
    top, _bottom = blend_samples(people, batch)
    assert post_json(people["lims"], result(top, "99.4", rid="QC-7")).status_code == 201
    document = operations_test([result(top, "99.4", rid="QC-7")], verb="Sync")
    assert valid(document)
    ack = answer(post_xml(people["lims"], document))
    assert expression(ack)[0] == "Accepted" and LabResult.objects.count() == 1


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<ProcessOperationsTestInformation xmlns="http://www.mesa.org/xml/B2MML" releaseID="V0700">
 <ApplicationArea><CreationDateTime>2026-12-07T10:00:00Z</CreationDateTime></ApplicationArea>
 <DataArea><Process/><OperationsTestInformation><TestResult><ID>&lol9;</ID></TestResult></OperationsTestInformation></DataArea>
</ProcessOperationsTestInformation>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<ProcessOperationsTestInformation xmlns="http://www.mesa.org/xml/B2MML" releaseID="V0700">
 <ApplicationArea><CreationDateTime>2026-12-07T10:00:00Z</CreationDateTime></ApplicationArea>
 <DataArea><Process/><OperationsTestInformation><TestResult><ID>&secret;</ID></TestResult></OperationsTestInformation></DataArea>
</ProcessOperationsTestInformation>"""


def _broken(kind: str, top, bottom) -> bytes:
    good = operations_test([result(top, "99.4", rid="QC-1")])
    if kind == "malformed":
        return good[:-40]
    if kind == "namespace":
        return good.replace(NS.encode(), b"http://example.com/not-b2mml")
    if kind == "verb":
        return operations_test([result(top, "99.4", rid="QC-1")], verb="Cancel")
    if kind == "invalid":
        return good.replace(b"<ID>QC-1</ID>", b"")  # a TestResult without its ID
    if kind == "oversized":  # valid, but longer than a message may be
        return operations_test([result(top, "99.4", rid="QC-1", comment="x" * (b2mml.MAX_BYTES + 10))])
    if kind == "bomb":
        return BILLION_LAUGHS
    if kind == "external_entity":
        return EXTERNAL_ENTITY
    if kind == "two_measurements":
        tree = etree.fromstring(good, PARSER)
        tr = tree.find(q("DataArea/OperationsTestInformation/TestResult"))
        measurement = tr.find(q("PropertyMeasurement"))
        tr.append(etree.fromstring(etree.tostring(measurement)))
        return etree.tostring(tree, xml_declaration=True, encoding="UTF-8")
    if kind == "unknown_sample":
        return operations_test(
            [result(top, "99.4", rid="QC-1"), {**result(bottom, "99.0", rid="QC-2"), "sample": "NO-SUCH"}]
        )
    raise AssertionError(kind)


CASES = [
    ("malformed", "NOT_XML", "not well-formed XML"),
    ("namespace", "WRONG_NAMESPACE", "not B2MML's http://www.mesa.org/xml/B2MML"),
    ("verb", "UNKNOWN_VERB", "A CancelOperationsTestInformation message is not taken here"),
    ("invalid", "NOT_VALID", "Not valid B2MML V0700: line"),
    ("oversized", "DOCUMENT_TOO_LARGE", "an OperationsTest message is at most 1,048,576 bytes"),
    ("bomb", "DTD_REFUSED", "The document declares a DTD"),
    ("external_entity", "DTD_REFUSED", "entities are never expanded here"),
    ("two_measurements", "ONE_MEASUREMENT", "has 2 PropertyMeasurement elements"),
    ("unknown_sample", "UNKNOWN_SAMPLE", "names sample 'NO-SUCH', which Batchline does not know"),
]


@pytest.mark.req("A11-07", "A11-05", "S95-04")
@pytest.mark.parametrize(("kind", "code", "words"), CASES, ids=[c[0] for c in CASES])
def test_a_document_that_cannot_be_taken_is_rejected_in_words_and_writes_nothing(
    plant, kind, code, words
) -> None:
    people, recipe, _lot = plant
    batch = new_batch(people, recipe)
    top, bottom = blend_samples(people, batch)
    document = _broken(kind, top, bottom)
    # What lxml says of the document itself, before Batchline sees it.
    if kind in ("two_measurements", "unknown_sample", "verb", "oversized"):
        assert valid(document)  # valid B2MML, refused for what it says
    else:
        assert not lxml_accepts(document)
    mark = last_entry()
    started = time.monotonic()
    response = post_xml(people["lims"], document)
    took = time.monotonic() - started
    assert response.status_code == 422
    ack = answer(response)
    action, text = expression(ack)
    assert action == "Rejected" and text.startswith("Rejected, nothing recorded: ")
    assert f"[{code}]" in text and words in text, text
    assert last_entry() == mark and not LabResult.objects.exists()
    assert took < 30  # not a timing claim: a document that expanded itself would not return at all
