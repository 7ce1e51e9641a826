"""Demo equipment: the classes of the paracetamol process and a unit in every status.

The units the demo batch needs are clean; others show each status the board
knows (in use, dirty, dirty hold exceeded, clean hold expired, cleaning,
maintenance, out of service, calibration overdue). Their pasts are written as
back-dated logbook lines, so each logbook agrees with its unit's state; every
record is created through the audit trail with the reason "demo data". Two
scales are ready to weigh (checked today), both registered as simulated: the
web server started on this database serves their MT-SICS simulators
(``SCALE-01`` on 127.0.0.1:4305, ``SCALE-02`` on 4306; batchline.simulation).

The classes and units themselves (a scale's capacity, readability, minimum
weight, unit and address too) are master data: each is requested and approved
through ``master`` (the demo passes masterdata.seeding's), as a plant's are.
What happened to a unit since (its status, cleaning, calibration and
maintenance dates, last check, logbook) is not master data: it is written
after the approval, as its back-dated logbook has it. So is ``simulated``,
which is no master-data field on purpose: a simulator answering for a scale
is a demo's or a test's, never a plant's to approve.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from batchline.audit.services import Actor, record_create, record_update

from .models import Equipment, EquipmentStatus, LogbookEntry, LogbookKind, Site

DEMO = Actor(id=None, username="demo", name="Demo data loader", via="cli")
WHY = "demo data"
PRODUCT = "PCM500 Paracetamol 500 mg tablets"
H = dt.timedelta(hours=1)
D = dt.timedelta(days=1)

# code, name, dirty hold h, clean hold h, is scale (holds from shared/domain/demo-product.md)
CLASSES = [
    ("booth", "Dispensing booth", 24, 72, False),
    ("scale", "Scale", None, None, True),
    ("granulator", "High-shear granulator", 72, 168, False),
    ("fluid_bed_dryer", "Fluid-bed dryer", 72, 168, False),
    ("mill", "Mill", 72, 168, False),
    ("bin_blender", "Bin blender", 72, 168, False),
    ("tablet_press", "Rotary tablet press", 72, 120, False),
]


# The demo's scales, simulated (batchline.simulation serves them with the web server): every
# dispensing of the demo product (shared/domain/demo-product.md) fits one. The floor scale takes
# the paracetamol (50 kg, about 50.2 kg at the lot's potency, in its drum), the water and the maize
# starch (12 and 6 kg); the bench scale povidone, sodium starch glycolate, magnesium stearate and
# colloidal silica (1.5 kg down to 0.2 kg ± 2 %, that is ± 4 g). Minimum weight 200 × d: the
# readability is then at most 0.5 % of any quantity either may weigh.
# code, name, capacity, readability (d), minimum weight, unit, MT-SICS port
SIMULATED_SCALES = [
    ("SCALE-01", "Bench scale 6.2 kg", "6200", "0.1", "20", "g", 4305),
    ("SCALE-02", "Floor scale 150 kg", "150", "0.005", "1", "kg", 4306),
]


# What a scale's master data holds besides its name and class; the rest of a unit's row is its state.
SCALE_DEFINITION = ("capacity", "readability", "minimum_weight", "unit", "host", "port")


def seed(
    site: Site, people: dict[str, Any], master: Callable[[str, list[dict[str, Any]]], list[Any]]
) -> None:
    """Create the demo classes and units and write each new unit's past; a second run adds what is missing.

    ``master(kind, rows)`` returns the master-data items, those missing requested and approved first.
    """
    operator, engineer = people["operator"], people["admin"]
    now = timezone.now()
    master(
        "equipment_class",
        [
            {
                "code": code,
                "name": name,
                "dirty_hold_hours": dirty,
                "clean_hold_hours": clean,
                "is_scale": scale,
            }
            for code, name, dirty, clean, scale in CLASSES
        ],
    )
    # Each unit's definition (master data, approved as a set below) and its past (written after).
    units: list[tuple[dict[str, Any], list[tuple[dt.timedelta, str, str]], dict[str, Any]]] = []

    def unit(
        code: str, name: str, cls: str, *, history: list[tuple[dt.timedelta, str, str]], **state: Any
    ) -> None:
        definition = {k: state.pop(k) for k in SCALE_DEFINITION if k in state}
        units.append(
            (
                {"code": code, "name": name, "site": site.code, "equipment_class": cls, **definition},
                history,
                state,
            )
        )

    def past(e: Equipment, history: list[tuple[dt.timedelta, str, str]], state: dict[str, Any]) -> None:
        if e.logbook.exists():  # written already (by an earlier run, or since)
            return
        values = {
            "calibration_due_at": now + 120 * D,
            "maintenance_due_at": now + 90 * D,
            "status": EquipmentStatus.CLEAN,
        } | state
        with transaction.atomic():
            record_update(
                Equipment.objects.select_for_update().get(pk=e.pk),
                actor=DEMO,
                values=values,
                reason="demo data: its state as its back-dated logbook has it",
            )
            for ago, kind, text in history:
                used = kind in (LogbookKind.USE_START, LogbookKind.USE_END)
                record_create(
                    LogbookEntry(
                        equipment=e,
                        kind=kind,
                        at=now - ago,
                        user=engineer if kind in (LogbookKind.MAINTENANCE, LogbookKind.STATUS) else operator,
                        batch_number="PCM-0000" if used else "",
                        product=PRODUCT if used else "",
                        text=text,
                    ),
                    actor=DEMO,
                    reason=WHY,
                )

    def cleaned(ago: dt.timedelta) -> list[tuple[dt.timedelta, str, str]]:
        return [
            (ago + H, LogbookKind.CLEANING_START, "Full clean per SOP-CLN-001"),
            (ago, LogbookKind.CLEANING_END, "Visually clean, rinse sample taken"),
        ]

    def used(start: dt.timedelta, end: dt.timedelta) -> list[tuple[dt.timedelta, str, str]]:
        return [(start, LogbookKind.USE_START, ""), (end, LogbookKind.USE_END, "")]

    # Ready for the demo batch PCM-0001.
    for code, name, cls in [
        ("BOOTH-01", "Dispensing booth 1", "booth"),
        ("GRAN-01", "Granulator GRAL 300", "granulator"),
        ("FBD-01", "Fluid-bed dryer WSG 60", "fluid_bed_dryer"),
        ("MILL-01", "Cone mill U20", "mill"),
        ("BLEND-01", "Bin blender 600 L", "bin_blender"),
        ("PRESS-01", "Rotary press P3030", "tablet_press"),
    ]:
        unit(code, name, cls, cleaned_at=now - 2 * H, history=cleaned(2 * H))
    for code, name, capacity, readability, minimum, scale_unit, port in SIMULATED_SCALES:
        unit(
            code,
            name,
            "scale",
            cleaned_at=now - 2 * H,
            capacity=Decimal(capacity),
            readability=Decimal(readability),
            minimum_weight=Decimal(minimum),
            unit=scale_unit,
            host="127.0.0.1",
            port=port,
            simulated=True,
            last_check_at=now - 30 * dt.timedelta(minutes=1),
            last_check_passed=True,
            history=[
                *cleaned(2 * H),
                (30 * dt.timedelta(minutes=1), LogbookKind.CHECK, "Passed. Test weight"),
            ],
        )
    # One in every other status.
    unit(
        "GRAN-02",
        "Granulator GRAL 75",
        "granulator",
        status=EquipmentStatus.IN_USE,
        current_batch="PCM-0000",
        in_use_since=now - H,
        last_batch="PCM-0000",
        last_product=PRODUCT,
        cleaned_at=now - 2 * D,
        history=[*cleaned(2 * D), (H, LogbookKind.USE_START, "")],
    )
    unit(
        "FBD-02",
        "Fluid-bed dryer WSG 15",
        "fluid_bed_dryer",
        status=EquipmentStatus.DIRTY,
        cleaned_at=now - 3 * D,
        last_used_end=now - 3 * H,
        last_batch="PCM-0000",
        last_product=PRODUCT,
        history=[*cleaned(3 * D), *used(8 * H, 3 * H)],
    )
    unit(
        "BLEND-02",
        "Bin blender 200 L",
        "bin_blender",
        status=EquipmentStatus.DIRTY,
        cleaned_at=now - 6 * D,
        last_used_end=now - 80 * H,
        last_batch="PCM-0000",
        last_product=PRODUCT,
        history=[*cleaned(6 * D), *used(84 * H, 80 * H)],
    )
    unit("MILL-02", "Cone mill U5", "mill", cleaned_at=now - 8 * D, history=cleaned(8 * D))
    unit(
        "PRESS-02",
        "Rotary press P2020",
        "tablet_press",
        status=EquipmentStatus.CLEANING,
        cleaned_at=now - 9 * D,
        last_used_end=now - 5 * H,
        last_batch="PCM-0000",
        last_product=PRODUCT,
        history=[
            *cleaned(9 * D),
            *used(30 * H, 5 * H),
            (20 * dt.timedelta(minutes=1), LogbookKind.CLEANING_START, "Full clean per SOP-CLN-001"),
        ],
    )
    unit(
        "PRESS-03",
        "Rotary press P1010",
        "tablet_press",
        status=EquipmentStatus.MAINTENANCE,
        status_reason="replace upper punch guides",
        cleaned_at=now - 4 * D,
        history=[
            *cleaned(4 * D),
            (3 * H, LogbookKind.MAINTENANCE, "Started: replace upper punch guides"),
        ],
    )
    unit(
        "BOOTH-02",
        "Dispensing booth 2",
        "booth",
        status=EquipmentStatus.OUT_OF_SERVICE,
        status_reason="laminar flow alarm; HEPA filter to be replaced",
        cleaned_at=now - 5 * D,
        history=[
            *cleaned(5 * D),
            (D, LogbookKind.STATUS, "Out of service: laminar flow alarm; HEPA filter to be replaced"),
        ],
    )
    unit(
        "SCALE-03",
        "Analytical scale 600 g",
        "scale",
        cleaned_at=now - 2 * H,
        calibration_due_at=now - 2 * D,
        capacity=Decimal("620"),
        # Master data takes no scale without its readability; 1 mg, the minimum weight 50 d.
        readability=Decimal("0.001"),
        minimum_weight=Decimal("0.05"),
        unit="g",
        last_check_at=now - 3 * D,
        last_check_passed=True,
        history=cleaned(2 * H),
    )
    made = master("equipment", [definition for definition, _history, _state in units])
    for e, (_definition, history, state) in zip(made, units, strict=True):
        past(e, history, state)
