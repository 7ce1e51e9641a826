"""The ERP tests' plant and checks.

A plant with an effective recipe whose materials the ERP names, and the ERP interface's account;
for the outbound tests an ERP destination configured and every document checked by two
validators: libxml2 (through lxml) is what Batchline validates with, ``xmlschema`` an independent
implementation of XSD 1.0, so a quirk of one cannot pass an invalid document unseen. Its
compiled schema (about 2 s) is made once per session.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
import xmlschema

from batchline.audit.services import Actor
from batchline.erp import outbound
from batchline.materials import services as stock
from batchline.reports.batchml import schema_dir
from tests.conftest import make_user
from tests.execution.test_engine import effective_recipe

RECIPE = """\
format: batchline.recipe/1
recipe:
  code: ERP-1
  name: ERP test tablets
  product_code: ERPTAB
  product_name: ERP test tablets 100 mg
  batch_size: {quantity: 1000, unit: tablet}
operations:
  - key: disp
    name: Dispensing
    steps:
      - key: disp_lac
        kind: weigh_dispense
        title: Dispense lactose
        material: {code: LAC-200, quantity: 2.000, unit: kg, tolerance_percent: 1}
      - key: disp_api
        kind: weigh_dispense
        title: Dispense the active ingredient
        material: {code: API-1, quantity: 0.100, unit: kg, tolerance_percent: 0.5, potency_adjust: true}
  - key: blend
    name: Blending
    steps:
      - key: charge_lac
        kind: material_charge
        title: Charge lactose
        material: {code: LAC-200, quantity: 2.000, unit: kg, tolerance_percent: 1, dispensed: disp_lac}
      - key: charge_api
        kind: material_charge
        title: Charge the active ingredient
        material: {code: API-1, quantity: 0.100, unit: kg, tolerance_percent: 0.5, dispensed: disp_api}
"""

MATERIALS = {
    "LAC-200": {
        "name": "Lactose monohydrate 200 mesh",
        "kind": "excipient",
        "unit": "kg",
        "shelf_life_days": 1095,
    },
    "API-1": {"name": "Active ingredient 1", "kind": "api", "unit": "kg", "potency_required": True},
}


def material(people: dict[str, Any], code: str) -> Any:
    return stock.material_create(actor=Actor.of(people["admin"], via="web"), code=code, **MATERIALS[code])


def make_erp_plant(*, materials: tuple[str, ...] = ("LAC-200", "API-1")) -> dict[str, Any]:
    people = {
        "author": make_user("author", ["recipe_author"]),
        "approver": make_user("approver", ["qa_approver"]),
        "supervisor": make_user("supervisor", ["supervisor"]),
        "admin": make_user("admin", ["administrator"]),
        "erp": make_user("erp-sap", ["erp_interface"], full_name="SAP PRD (ERP interface)"),
    }
    people["recipe"] = effective_recipe(people, RECIPE)
    for code in materials:
        material(people, code)
    return people


@pytest.fixture
def plant(db: None) -> dict[str, Any]:
    return make_erp_plant()


@pytest.fixture
def bare_plant(db: None) -> dict[str, Any]:
    """The recipe is effective, but the ERP has not yet sent its lactose: not in the master data."""
    return make_erp_plant(materials=("API-1",))


ERP = {"erp": {"type": "webhook", "url": "http://127.0.0.1:9/erp"}}


@pytest.fixture(scope="session")
def independent_xsd() -> xmlschema.XMLSchema10:
    return xmlschema.XMLSchema10(str(schema_dir() / "AllSchemas.xsd"))


def check_both(xml: bytes, xsd: xmlschema.XMLSchema10) -> None:
    """``xml`` is valid B2MML V0700 for lxml (Batchline's own check) and for xmlschema."""
    assert outbound.validate(xml) == [], outbound.validate(xml)
    errors = [str(e.reason) for e in xsd.iter_errors(io.BytesIO(xml))]
    assert errors == [], errors


def errors_of_both(xml: bytes, xsd: xmlschema.XMLSchema10) -> tuple[list[str], list[str]]:
    return outbound.validate(xml), [str(e.reason) for e in xsd.iter_errors(io.BytesIO(xml))]


@pytest.fixture
def erp(settings: Any, db: None, independent_xsd: xmlschema.XMLSchema10) -> Iterator[list[Any]]:
    """The installation sends to an ERP; after the test, every message it wrote is checked by both
    validators (so every document the suite produces is, not only those a test looks at)."""
    from batchline.outbox.models import Message

    settings.OUTBOX_DESTINATIONS = ERP
    checked: list[Any] = []
    yield checked
    for message in Message.objects.filter(destination="erp").order_by("id"):
        assert message.content_type == "application/xml"
        check_both(message.body.encode("utf-8"), independent_xsd)
        checked.append(message.key)
