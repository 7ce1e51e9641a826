"""The inventory, read over the API (issue 14, first part): lots with their containers, by material
and lot number, with filters and paging; the same permission as the Materials pages (``materials.view_lot``).

Reads only: receipts, dispositions, returns and label prints keep their own services and pages for now.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db.models import Count, Sum
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Query, Router, Schema
from ninja.errors import HttpError

from batchline.materials.models import Container, Lot, LotStatus
from batchline.web.access import require

router = Router(tags=["inventory"])
VIEW = "materials.view_lot"


class ContainerOut(Schema):
    code: str
    quantity: str
    unit: str
    tare: str | None
    location: str
    reserved_for: str | None
    dispensed_for: str | None
    returned_from: str | None
    created_at: dt.datetime


class LotOut(Schema):
    material: str
    material_name: str
    number: str
    status: str
    supplier: str
    supplier_lot: str
    received_at: dt.datetime
    expires_at: dt.datetime | None
    retest_at: dt.datetime | None
    potency: str | None
    produced_by_batch: str
    containers: int
    quantity: str
    unit: str


class LotDetailOut(LotOut):
    container_list: list[ContainerOut]


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


def _lot(lot: Any) -> dict[str, Any]:
    return {
        "material": lot.material.code,
        "material_name": lot.material.name,
        "number": lot.number,
        "status": lot.status,
        "supplier": lot.supplier,
        "supplier_lot": lot.supplier_lot,
        "received_at": lot.received_at,
        "expires_at": lot.expires_at,
        "retest_at": lot.retest_at,
        "potency": _text(lot.potency),
        "produced_by_batch": lot.produced_by_batch,
        "containers": lot.container_count,
        "quantity": _text(lot.on_hand) or "0",
        "unit": lot.material.unit,
    }


def _lots() -> Any:
    return Lot.objects.select_related("material").annotate(
        container_count=Count("containers"), on_hand=Sum("containers__quantity")
    )


@router.get("/lots", response=list[LotOut])
def lots(
    request: HttpRequest,
    material: str = "",
    status: str = "",
    number: str = "",
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
) -> list[dict[str, Any]]:
    """Lots, by material code then lot number; ``material``, ``status`` and ``number`` filter exactly."""
    require(request.user, VIEW)
    if status and status not in LotStatus.values:
        raise HttpError(422, f"{status[:40]!r} is not a lot status ({', '.join(LotStatus.values)}).")
    found = _lots().order_by("material__code", "number")
    if material:
        found = found.filter(material__code=material)
    if status:
        found = found.filter(status=status)
    if number:
        found = found.filter(number=number)
    return [_lot(lot) for lot in found[offset : offset + limit]]


@router.get("/lots/{material}/{number}", response=LotDetailOut)
def lot(request: HttpRequest, material: str, number: str) -> dict[str, Any]:
    """One lot, addressed by its material's code and its lot number, with every container."""
    require(request.user, VIEW)
    found = get_object_or_404(_lots(), material__code=material, number=number)
    containers = Container.objects.filter(lot=found).order_by("code")
    return {
        **_lot(found),
        "container_list": [
            {
                "code": c.code,
                "quantity": _text(c.quantity),
                "unit": c.unit,
                "tare": _text(c.tare),
                "location": c.location,
                "reserved_for": c.reserved_for,
                "dispensed_for": c.dispensed_for,
                "returned_from": c.returned_from,
                "created_at": c.created_at,
            }
            for c in containers
        ],
    }
