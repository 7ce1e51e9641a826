"""A label as the dispensing service would build it, and the fixed day the tests read scans on."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from batchline.labels.container import ContainerLabel, ContainerStatus, Dispense

TODAY = dt.date(2026, 11, 24)
PLANT = ZoneInfo("Europe/Berlin")
NOW = dt.datetime(2026, 11, 24, 9, 12, tzinfo=dt.UTC)


def a_dispense(**overrides: Any) -> Dispense:
    values: dict[str, Any] = {
        "batch": "PCM-0001",
        "product_name": "Paracetamol tablets",
        "strength": "500 mg",
        "dispensed_by": "Olivia Operator",
        "dispensed_at": NOW,
    }
    return Dispense(**(values | overrides))


def a_label(**overrides: Any) -> ContainerLabel:
    """A received container of microcrystalline cellulose, released, with a supplier GTIN."""
    values: dict[str, Any] = {
        "material_code": "MCC-102",
        "material_name": "Microcrystalline cellulose PH 102",
        "lot": "L-0042",
        "container_id": "C-000123",
        "quantity": Decimal("12.500"),
        "unit": "kg",
        "status": ContainerStatus.RELEASED,
        "gtin": "09501101530003",
        "supplier_lot": "SUP-77-1",
        "tare": Decimal("0.850"),
        "expiry": dt.datetime(2027, 1, 31, 14, 5, tzinfo=PLANT),
        "retest": dt.datetime(2026, 7, 31, 0, 0, tzinfo=PLANT),
        "received_on": dt.date(2026, 2, 3),
        "printed_at": NOW,
        "zone": PLANT,
    }
    return ContainerLabel(**(values | overrides))
