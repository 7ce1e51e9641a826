"""Demo materials: everything the paracetamol recipe weighs out, and a lot for each thing the gate must catch.

Each material of the formula (shared/domain/demo-product.md) has a released lot
with enough stock for the demo batch, received and released through the same
services a plant uses (the warehouse receives into quarantine, QA releases
with a signature). Paracetamol also comes in a lot in quarantine, one expired
90 minutes before the demo started and one past its retest date, so the gate's
refusals can be seen on the floor. The products are materials too, with the
shelf life their produced lots' expiry counts from. Every label prints to the plant's
approved label template for it.

The materials themselves are master data: each is requested and approved
through ``master`` (the demo passes masterdata.seeding's, so each has its
administrator's request and QA approver's approval, as a plant's would).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.utils import timezone

from batchline.audit.services import Actor

from . import services as stock
from .models import Lot

D = dt.timedelta(days=1)


@dataclass(frozen=True)
class DemoLot:
    number: str
    containers: list[str]
    supplier: str
    location: str
    expires_in: dt.timedelta
    status: str = "released"
    retest_in: dt.timedelta | None = None
    potency: Decimal | None = None
    supplier_lot: str = ""


@dataclass(frozen=True)
class DemoMaterial:
    code: str
    name: str
    kind: str
    storage: str
    shelf_life_days: int
    retest_days: int | None
    lots: list[DemoLot] = field(default_factory=list)
    gtin: str | None = None
    unit: str = "kg"


# The plant's label templates (LBL-01): a heading and a statement per label, each approved like any
# master data; every label names the one it was printed to.
LABEL_TEMPLATES = [
    {"code": f"LBL-{code}", "name": name, "label": label, "title": title, "statement": statement}
    for code, label, name, title, statement in (
        ("RCV", "container", "Received container", "RECEIVED MATERIAL", "For manufacturing use only"),
        ("DSP", "dispensed", "Dispensed container", "DISPENSED MATERIAL", "For this batch only"),
        ("RET", "returned", "Returned to stock", "RETURNED MATERIAL", "Check weight before use"),
        ("OUT", "output", "Container of output", "PRODUCED MATERIAL", "Held until QA release"),
        ("PRD", "product", "Finished product carton", "FINISHED PRODUCT", "Keep out of reach of children"),
        ("SMP", "sample", "Sample", "QC SAMPLE", "Deliver to the QC laboratory"),
    )
]

GRANULES = "Granules India Ltd."
MATERIALS = [
    DemoMaterial(
        "PCM-API",
        "Paracetamol",
        "api",
        "15–25 °C, dry",
        1095,
        730,
        gtin="09501101530003",
        lots=[
            # 60 kg fibre drums: the demo batch's 50.2 kg (at 99.6 % assay) is one weighing from one drum.
            DemoLot("PCM-L0101", ["60", "60", "25"], GRANULES, "WH-A-01", 700 * D, potency=Decimal("99.6")),
            DemoLot("PCM-L0102", ["60"], GRANULES, "WH-A-01", 900 * D, "quarantine", potency=Decimal("99.8")),
            # Its expiry is corrected by QA to 90 minutes before the demo started (below).
            DemoLot("PCM-L0099", ["60"], GRANULES, "WH-A-01", 30 * D, potency=Decimal("99.5")),
            DemoLot("PCM-L0098", ["60"], GRANULES, "WH-A-01", 200 * D, retest_in=-D, potency=Decimal("99.7")),
        ],
    ),
    DemoMaterial(
        "STARCH",
        "Maize starch",
        "excipient",
        "15–25 °C, dry",
        1825,
        1095,
        lots=[DemoLot("STA-L0311", ["25", "25"], "Roquette Frères", "WH-B-01", 900 * D)],
    ),
    DemoMaterial(
        "PVP-K30",
        "Povidone K30",
        "excipient",
        "15–25 °C, tightly closed",
        1095,
        730,
        lots=[DemoLot("PVP-L0042", ["10", "10"], "BASF SE", "WH-B-02", 600 * D)],
    ),
    DemoMaterial(
        "PW",
        "Purified water",
        "excipient",
        "drawn from the loop at the point of use; released per sampling period",
        7,
        None,
        # This week's water from the loop, sampled and released for the week.
        lots=[DemoLot("PW-W49", ["50"], "Purified water loop, point of use 3", "PW-POU-3", 7 * D)],
    ),
    DemoMaterial(
        "SSG",
        "Sodium starch glycolate",
        "excipient",
        "15–25 °C, dry",
        1095,
        730,
        lots=[DemoLot("SSG-L0019", ["10", "10"], "JRS Pharma", "WH-B-02", 700 * D)],
    ),
    DemoMaterial(
        "SILICA",
        "Colloidal silicon dioxide",
        "excipient",
        "15–25 °C, dry",
        1825,
        1095,
        lots=[DemoLot("SIL-L0007", ["5"], "Evonik", "WH-B-02", 1000 * D)],
    ),
    DemoMaterial(
        "MGST",
        "Magnesium stearate",
        "excipient",
        "15–25 °C, dry",
        1095,
        730,
        lots=[DemoLot("MGST-L0007", ["10", "10"], "Peter Greven", "WH-B-03", 500 * D)],
    ),
    DemoMaterial(
        "DRUM-60",
        "Fibre drum 60 L, double polyethylene liner, tamper-evident closure",
        "packaging",
        "dry, closed cartons",
        1825,
        None,
        lots=[DemoLot("DRM-L0455", ["40"], "Greif Packaging", "WH-P-01", 1500 * D)],
        unit="piece",
    ),
]
# The products, as the materials their batches make: a produced lot's expiry counts from the shelf life.
# (code, name, kind, unit, shelf life in days)
PRODUCTS = [
    ("PCM500", "Paracetamol 500 mg tablets", "finished", "tablet", 1095),  # 36 months
    ("PCM500-IPC", "Paracetamol 500 mg tablets, IPC lot", "finished", "tablet", 1095),
    # The drying check's dried granules (recipes/demo/drying-check.yaml): held before compression.
    ("PCM500-GRAN", "Paracetamol granules, dried", "intermediate", "kg", 90),
]


def seed(
    clerk: Any,
    qa: Any,
    sign: Callable[[str, str], Any],
    master: Callable[[str, list[dict[str, Any]]], list[Any]],
) -> None:
    """Create the demo's materials and receive and release their lots; a second run adds what is missing.

    ``sign(username, meaning)`` signs as a demo person; ``master(kind, rows)``
    returns the master-data items, those missing requested and approved first.
    """
    now = timezone.now()
    receiver, approver = Actor.of(clerk, via="cli"), Actor.of(qa, via="cli")
    master("label_template", LABEL_TEMPLATES)
    materials = master(
        "material",
        [
            {
                "code": m.code,
                "name": m.name,
                "kind": m.kind,
                "unit": m.unit,
                "storage": m.storage,
                "shelf_life_days": m.shelf_life_days,
                "retest_days": m.retest_days,
                "gtin": m.gtin,
            }
            for m in MATERIALS
        ]
        + [
            {
                "code": code,
                "name": name,
                "kind": kind,
                "unit": unit,
                "storage": "15–25 °C, protected from moisture",
                "shelf_life_days": shelf_life_days,
            }
            for code, name, kind, unit, shelf_life_days in PRODUCTS
        ],
    )
    received = []
    for m, material in zip(MATERIALS, materials[: len(MATERIALS)], strict=True):
        for d in m.lots:
            if Lot.objects.filter(material=material, number=d.number).exists():
                continue
            lot = stock.lot_receive(
                actor=receiver,
                material=material,
                number=d.number,
                expires_at=now + d.expires_in,
                retest_at=now + d.retest_in if d.retest_in is not None else None,
                containers=d.containers,
                supplier=d.supplier,
                supplier_lot=d.supplier_lot,
                potency=d.potency,
                location=d.location,
            )
            received.append(d.number)
            if d.status == "released":
                stock.lot_disposition(
                    actor=approver,
                    lot=lot,
                    status="released",
                    signer=sign("approver", "released"),
                    reason="demo data: certificate of analysis reviewed",
                )
    if "PCM-L0099" in received:  # only the lot received now: a later run leaves QA's correction as it is
        stock.lot_expiry_correct(
            actor=approver,
            lot=Lot.objects.get(number="PCM-L0099"),
            expires_at=now - dt.timedelta(minutes=90),
            signer=sign("approver", "approved"),
            reason="demo data: the supplier's notice moved the expiry to 90 minutes before the demo started",
        )


def containers_of(lot_number: str) -> list[str]:
    """The container codes of a demo lot, in the order they were received (for the demo's hints)."""
    lot = Lot.objects.filter(number=lot_number).first()
    return list(lot.containers.order_by("code").values_list("code", flat=True)) if lot else []
