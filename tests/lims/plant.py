"""A small plant whose recipe samples for the laboratory, its people (the LIMS interface user among
them) and the helpers that post results as the LIMS does: JSON over the API, or B2MML OperationsTest.

The recipe has four sampling steps after the blender is identified (the blend IPC beside the
lot and content samples, the retain sample after all):

- ``blend_ipc``: two samples of the blend from the blender, an assay the step waits for, critical,
  with specification and action limits in %;
- ``api_check``: a sample of a received lot of API-1 (a lot sample), water content ≤ 0.5 %;
- ``api_content``: the API content of the whole blend, its limits scaled with the batch size (kg);
- ``retain``: a retain sample of the tablets with no limits in the recipe.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.test import Client
from django.utils import timezone
from lxml import etree

from batchline.audit.services import record_create
from batchline.equipment import services as eq
from batchline.equipment.models import Site
from batchline.execution import recording
from batchline.execution import services as ex
from batchline.masterdata.imports import b2mml_schema
from batchline.materials import services as stock
from tests.api.test_api import token_for
from tests.conftest import make_user
from tests.execution.test_engine import A, complete, effective_recipe, product_master_data, sign, start
from tests.materials.test_charging import receive

LIMS = {"lims": {"type": "webhook", "url": "http://127.0.0.1:9/lims"}}
NS = "http://www.mesa.org/xml/B2MML"

RECIPE = """\
format: batchline.recipe/1
recipe: {code: LAB-1, name: Laboratory IPC, product_code: LABT, product_name: Lab tablets 100 mg, batch_size: {quantity: 1000, unit: tablet}}
operations:
  - key: blend
    name: Blending
    steps:
      - key: blender
        kind: equipment_id
        title: Identify the blender
        equipment_class: BLEND
      - key: blend_ipc
        kind: sampling
        title: Sample the blend for its assay
        sampling:
          quantity: 5
          unit: g
          samples: 2
          source: equipment
          positions: [top, bottom]
          test: Blend assay
          method: SOP-QC-021
          result: {name: blend_assay, label: Blend assay, unit: "%", specification: {low: 95, high: 105}, action: {low: 97, high: 103}, critical: true, waits: true}
      - key: api_check
        kind: sampling
        title: Sample the API lot for its water content
        after: [blender]
        sampling:
          material: API-1
          quantity: 10
          unit: g
          source: container
          test: Water content
          method: SOP-QC-007
          result: {name: api_water, label: Water content, unit: "%", specification: {high: 0.5}}
      - key: api_content
        kind: sampling
        title: Sample the blend for its API content
        sampling:
          quantity: 5
          unit: g
          source: equipment
          test: API content of the blend
          method: SOP-QC-022
          result: {name: api_total, label: API in the blend, unit: kg, specification: {low: 9.5, high: 10.5}, scales: true}
      - key: retain
        kind: sampling
        title: Take a retain sample
        after: [blend_ipc, api_content]
        sampling: {quantity: 50, unit: g, source: equipment, test: Retain, method: SOP-QC-001}
"""


def make_lims_plant() -> tuple[dict[str, Any], Any, Any]:
    """People, the recipe (effective), the blender and a released lot of API-1 with two containers."""
    people = {
        "author": make_user("author", ["recipe_author"]),
        "approver": make_user("approver", ["qa_approver"]),
        "reviewer": make_user("reviewer", ["qa_reviewer"]),
        "supervisor": make_user("supervisor", ["supervisor"]),
        "supervisor2": make_user("supervisor2", ["supervisor"]),
        "operator": make_user("operator", ["operator"]),
        "warehouse": make_user("warehouse", ["warehouse"]),
        "engineer": make_user("engineer", ["administrator"]),
        "lims": make_user("lims", ["lims_interface"], full_name="LIMS Interface"),
    }
    recipe = effective_recipe(people, RECIPE)
    product_master_data(people["author"], "LABT", "Lab tablets 100 mg", "tablet")
    engineer = A(people["engineer"])
    with transaction.atomic():
        site = record_create(Site(code="s1", name="Site 1"), actor=engineer)
    blend = eq.equipment_class_create(actor=engineer, code="BLEND", name="Blender")
    eq.equipment_create(
        actor=engineer, site=site, code="BLEND-01", name="Bin blender 1", equipment_class=blend
    )
    eq.cleaning_start(actor=A(people["operator"]), code="BLEND-01")
    eq.cleaning_end(actor=A(people["operator"]), code="BLEND-01")
    api = stock.material_create(
        actor=A(people["author"]), code="API-1", name="Active ingredient", kind="api", unit="kg"
    )
    lot = receive(people, api, "L-API-01", containers=("20", "20"))
    bearer(people["lims"])  # the LIMS's token, made before any test counts what is written
    return people, recipe, lot


def new_batch(people, recipe, number="LB-001", quantity="1000"):
    batch = ex.batch_create(
        actor=A(people["supervisor"]), recipe=recipe, number=number, planned_quantity=Decimal(quantity)
    )
    return ex.batch_command(
        actor=A(people["supervisor"]), batch=batch, command="release", signer=sign(people["supervisor"])
    )


def take(people, batch, key, source, quantity, position=""):
    sample = recording.step_sample(
        actor=A(people["operator"]),
        user=people["operator"],
        batch=batch,
        step_key=key,
        source=source,
        quantity=quantity,
        position=position,
    )
    recording.sample_label_print(actor=A(people["operator"]), batch=batch, code=sample.code)
    return sample


def claim_blender(people, batch) -> None:
    start(people, batch, "blender")
    ex.step_scan(
        actor=A(people["operator"]),
        user=people["operator"],
        batch=batch,
        step_key="blender",
        scan="EQ:BLEND-01",
    )
    complete(people, batch, "blender")


def blend_samples(people, batch):
    """The blender claimed, the blend IPC step started and both its samples taken and labelled."""
    claim_blender(people, batch)
    start(people, batch, "blend_ipc")
    return [take(people, batch, "blend_ipc", "EQ:BLEND-01", "5.1", p) for p in ("top", "bottom")]


def result(sample, value, unit="%", *, rid=None, test=None, **extra) -> dict[str, Any]:
    return {
        "result_id": rid or f"LIMS-{sample.code}",
        "sample": sample.code,
        "test": test or sample.test,
        "value": str(value),
        "unit": unit,
        **extra,
    }


def bearer(user) -> dict[str, str]:
    """The user's one write token in this test (made once: a token's creation is audited)."""
    if not hasattr(user, "_test_token"):
        user._test_token = token_for(user)
    return {"Authorization": f"Bearer {user._test_token}"}


def post_json(user, body: dict[str, Any]) -> Any:
    return Client().post(
        "/api/v1/lims/results", data=json.dumps(body), content_type="application/json", headers=bearer(user)
    )


def post_xml(user, document: bytes) -> Any:
    return Client().post(
        "/api/v1/lims/operations-test", data=document, content_type="application/xml", headers=bearer(user)
    )


# --- B2MML OperationsTest documents, as a LIMS writes them -------------------------------------


def _el(parent, name, text=None, **attrs):
    e = etree.SubElement(parent, f"{{{NS}}}{name}", attrs)
    if text is not None:
        e.text = text
    return e


def operations_test(
    results: list[dict[str, Any]], *, verb: str = "Process", bod: str = "LIMS-BOD-1"
) -> bytes:
    """A ``<verb>OperationsTestInformation`` with one TestResult per result (as :func:`result` makes)."""
    root = etree.Element(f"{{{NS}}}{verb}OperationsTestInformation", nsmap={None: NS}, releaseID="V0700")
    area = _el(root, "ApplicationArea")
    _el(_el(area, "Sender"), "LogicalID", "LIMS-QC")
    _el(area, "CreationDateTime", "2026-12-07T10:00:00Z")
    _el(area, "BODID", bod)
    data = _el(root, "DataArea")
    _el(data, verb)
    info = _el(data, "OperationsTestInformation")
    _el(info, "ID", "OTI-1")
    for r in results:
        tr = _el(info, "TestResult")
        _el(tr, "ID", r["result_id"])
        if r.get("comment"):
            _el(tr, "Description", r["comment"])
        _el(tr, "EvaluationDate", r.get("tested_at", "2026-12-07T09:30:00Z"))
        _el(tr, "TestableObjectID", r["sample"])
        if r.get("lims_verdict"):
            _el(tr, "EvaluatedCriterionResult", r["lims_verdict"])
        m = _el(tr, "PropertyMeasurement")
        _el(m, "ID", r["test"])
        value = _el(m, "Value")
        _el(value, "ValueString", r["value"])
        _el(value, "DataType", "decimal")
        if r.get("unit"):
            _el(value, "UnitOfMeasure", r["unit"])
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def valid(document: bytes) -> bool:
    """Whether ``document`` is valid B2MML V0700 to lxml (every document a test sends or gets is checked)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return bool(b2mml_schema().validate(etree.fromstring(document, parser)))


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def an_hour_ago() -> dt.datetime:
    return timezone.now() - dt.timedelta(hours=1)


def run_to_complete(people, batch, lot, *, blend=("99.0", "100.5")):
    """Every step: the blend IPC with its two results (in specification unless ``blend`` says
    otherwise), the lot, content and retain samples taken; the batch complete. Returns the samples."""
    top, bottom = blend_samples(people, batch)
    for sample, value in zip((top, bottom), blend, strict=True):
        number, unit = value if isinstance(value, tuple) else (value, "%")
        assert post_json(people["lims"], result(sample, number, unit)).status_code == 201
    complete(people, batch, "blend_ipc")
    start(people, batch, "api_check")
    lot_sample = take(people, batch, "api_check", lot.containers.order_by("code").first().code, "10")
    complete(people, batch, "api_check")
    start(people, batch, "api_content")
    content = take(people, batch, "api_content", "EQ:BLEND-01", "5")
    complete(people, batch, "api_content")
    start(people, batch, "retain")
    retain = take(people, batch, "retain", "EQ:BLEND-01", "50")
    complete(people, batch, "retain")
    batch.refresh_from_db()
    assert batch.state == "complete"
    return {"top": top, "bottom": bottom, "lot": lot_sample, "content": content, "retain": retain}
