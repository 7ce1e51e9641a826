"""A plant with an effective recipe whose materials the ERP names, and the ERP interface's account."""

from __future__ import annotations

from typing import Any

import pytest

from batchline.audit.services import Actor
from batchline.materials import services as stock
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
