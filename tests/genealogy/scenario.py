"""A seeded five-level genealogy with splits and merges, through the real services.

    raw lots        A1 (supplier lot SUP-A-77, two containers), A2 (SUP-A-78), E1 (SUP-E-1)
    granulation     G1 ← A1 (first container) + E1          G2 ← A1 (second container) + A2
    blend           BL1 ← G1 + G2                            (a merge)
    cores           C1 ← BL1
    tablets         T1 ← C1
    packs           P1 ← half of T1, P2 ← the other half      (a split)

A1 is split over G1 and G2; G2 and BL1 merge lots. Granulator GRAN-01 is
claimed by G1, released, then claimed by G2 and released. Every batch runs
(a step started by the operator), consumes through
``materials.services.container_consume`` (what the charge step calls), and
produces through ``execution.services.batch_produce``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from batchline.audit.services import record_create
from batchline.equipment import services as eq
from batchline.equipment.models import Site
from batchline.execution import services as ex
from batchline.execution.models import Batch
from batchline.materials import services as stock
from batchline.materials.models import Lot
from tests.conftest import make_user
from tests.execution.test_engine import A, effective_recipe, sign, start

RECIPE = """
format: batchline.recipe/1
recipe: {{code: R-{code}, name: Make {code}, product_code: {code}, product_name: {name}, batch_size: {{quantity: 20, unit: kg}}}}
operations:
  - key: make
    name: Make
    steps:
      - key: work
        kind: instruction
        title: Make it
"""

PRODUCTS = {
    "GRAN": "Granulate",
    "BLEND": "Final blend",
    "CORE": "Tablet cores",
    "TAB": "Coated tablets",
    "PACK": "Packed tablets",
}


def people() -> dict[str, Any]:
    return {
        "author": make_user("author", ["recipe_author"]),
        "approver": make_user("approver", ["qa_approver"]),
        "supervisor": make_user("supervisor", ["supervisor"]),
        "operator": make_user("operator", ["operator"]),
        "operator2": make_user("operator2", ["operator"]),
        "warehouse": make_user("warehouse", ["warehouse"]),
        "auditor": make_user("auditor", ["auditor"]),
    }


def seed() -> dict[str, Any]:
    p = people()
    wh, op = A(p["warehouse"]), A(p["operator"])
    api = stock.material_create(actor=wh, code="API", name="Paracetamol", kind="api", unit="kg")
    exc = stock.material_create(actor=wh, code="EXC", name="Maize starch", kind="excipient", unit="kg")
    # The granulate is registered beforehand as an intermediate with its own hold time.
    stock.material_create(
        actor=wh, code="GRAN", name="Granulate", kind="intermediate", unit="kg", shelf_life_days=30
    )
    later = timezone.now() + dt.timedelta(days=365)

    def receive(material: Any, number: str, supplier_lot: str, containers: list[str]) -> Lot:
        return stock.lot_receive(
            actor=wh,
            material=material,
            number=number,
            expires_at=later,
            containers=containers,
            supplier="Acme",
            supplier_lot=supplier_lot,
        )

    receive(api, "A1", "SUP-A-77", ["10", "10"])
    receive(api, "A2", "SUP-A-78", ["10"])
    receive(exc, "E1", "SUP-E-1", ["20"])
    recipes = {
        code: effective_recipe(p, RECIPE.format(code=code, name=name)) for code, name in PRODUCTS.items()
    }

    with transaction.atomic():
        site = record_create(Site(code="p1", name="Plant 1"), actor=op)
    granulator = eq.equipment_class_create(actor=op, code="granulator", name="Granulator")
    eq.equipment_create(actor=op, site=site, code="GRAN-01", name="Granulator 1", equipment_class=granulator)

    def clean() -> None:
        eq.cleaning_start(actor=op, code="GRAN-01")
        eq.cleaning_end(actor=op, code="GRAN-01", text="cleaned per SOP")

    def batch(number: str, product: str, inputs: list[tuple[str, str]], produced: list[str]) -> Batch:
        made = ex.batch_create(
            actor=A(p["supervisor"]), recipe=recipes[product], number=number, planned_quantity=Decimal(20)
        )
        made = ex.batch_command(
            actor=A(p["supervisor"]), batch=made, command="release", signer=sign(p["supervisor"])
        )
        start(p, made, "work")
        for container_code, quantity in inputs:
            with transaction.atomic():
                container = stock.container_locked(container_code)
                stock.container_consume(
                    actor=op,
                    container=container,
                    quantity=Decimal(quantity),
                    batch_number=number,
                    step_key="work",
                    at=timezone.now(),
                )
        ex.batch_produce(actor=A(p["operator2"]), batch=made, quantities=produced, unit="kg", step_key="work")
        return made

    def containers(lot: str) -> list[str]:
        return list(Lot.objects.get(number=lot).containers.order_by("code").values_list("code", flat=True))

    a1 = containers("A1")
    clean()
    eq.equipment_claim(actor=op, code="GRAN-01", batch_number="G1", product="GRAN")
    batch("G1", "GRAN", [(a1[0], "5"), (containers("E1")[0], "5")], ["10"])
    eq.equipment_release(actor=op, code="GRAN-01", batch_number="G1")
    clean()
    eq.equipment_claim(actor=op, code="GRAN-01", batch_number="G2", product="GRAN")
    batch("G2", "GRAN", [(a1[1], "5"), (containers("A2")[0], "5")], ["6", "4"])
    eq.equipment_release(actor=op, code="GRAN-01", batch_number="G2")
    g2 = containers("G2")
    batch("BL1", "BLEND", [(containers("G1")[0], "10"), (g2[0], "6"), (g2[1], "4")], ["20"])
    batch("C1", "CORE", [(containers("BL1")[0], "20")], ["20"])
    batch("T1", "TAB", [(containers("C1")[0], "20")], ["10", "10"])
    t1 = containers("T1")
    batch("P1", "PACK", [(t1[0], "10")], ["10"])
    batch("P2", "PACK", [(t1[1], "10")], ["10"])
    return {"people": p, "lots": {n: Lot.objects.get(number=n) for n in ["A1", "A2", "E1", "P1", "T1"]}}
