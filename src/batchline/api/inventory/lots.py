"""Lots over the API, addressed by material code and lot number: read, received, dispositioned (signed).

The services of the Materials pages (``materials.services``), so the same permissions, refusals,
audit entries and signatures. A lot number may hold a slash ("2026/0153"): the number is the rest
of the path, and the lot's actions end it (``…/2026/0153/disposition``).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal, get_args

from django.http import HttpRequest
from django.utils import timezone
from ninja import Query, Router, Schema, Status
from ninja.errors import HttpError
from pydantic import Field

from batchline.materials import selectors as material_selectors
from batchline.materials import services as stock
from batchline.materials.models import LotStatus, Material
from batchline.signatures.models import Meaning
from batchline.web.access import require

from ..production import Refusal, _signer
from ..schemas import Problem, SignatureIn
from .common import VIEW, LotDetailOut, LotOut, actor, aware, lot_detail, lot_found, lot_out

router = Router(tags=["inventory"])

DISPOSE = "materials.disposition_lot"
StatusName = Literal["quarantine", "released", "rejected", "blocked"]
assert set(get_args(StatusName)) == set(LotStatus.values), "the API's lot statuses are the model's"

Quantity = Decimal | Annotated[str, Field(max_length=40)]


class ReceiptIn(Schema):
    """What the receiving page asks for: the certificate's dates and potency, one quantity per container."""

    material: str = Field(max_length=40, description="the material's item code")
    number: str = Field(default="", max_length=40, description="the lot (receiving) number")
    expires_at: dt.datetime | None = Field(
        default=None, description="from the certificate; without an offset, in the site's time zone"
    )
    retest_at: dt.datetime | None = None
    potency: Quantity | None = Field(default=None, description="assay, % of label claim")
    containers: list[Quantity] = Field(
        default_factory=list,
        max_length=1000,
        description="the net quantity of each container, in the material's unit: a number, or text as "
        "typed in the site's notation",
    )
    supplier: str = Field(default="", max_length=200)
    supplier_lot: str = Field(default="", max_length=60)
    location: str = Field(default="", max_length=60)


class DispositionIn(Schema):
    status: StatusName
    reason: str = Field(default="", max_length=2000)
    signature: SignatureIn = Field(
        description="the QA person's own user ID and password; the meaning follows the status"
    )


class RetestIn(Schema):
    retest_at: dt.datetime
    reason: str = Field(default="", max_length=2000, description="the test result that extends it")
    signature: SignatureIn


class ExpiryIn(Schema):
    expires_at: dt.datetime
    reason: str = Field(default="", max_length=2000, description="the document that says so")
    signature: SignatureIn


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
    found = material_selectors.lots_with_stock().order_by("material__code", "number")
    if material:
        found = found.filter(material__code=material)
    if status:
        found = found.filter(status=status)
    if number:
        found = found.filter(number=number)
    now = timezone.now()
    return [lot_out(lot, now) for lot in found[offset : offset + limit]]


def _potency(value: Quantity | None) -> Decimal | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return stock.quantity_of(value.strip() if isinstance(value, str) else value, what="potency")


@router.post("/lots", response={201: LotDetailOut, 403: Problem, 409: Refusal, 422: Problem})
def lot_receive(request: HttpRequest, payload: ReceiptIn) -> Any:
    """A goods receipt: the lot in quarantine with its containers, each received in the ledger (MAT-05)."""
    require(request.user, "materials.receive_material")
    material = Material.objects.filter(code=payload.material.strip()).first()
    if material is None:
        raise stock.MaterialRefused.because(
            "NO_MATERIAL",
            f"No material {payload.material[:40]!r} is in the master data: choose the one received.",
        )
    expires_at = aware(payload.expires_at, "expiry")
    if expires_at is None:
        raise stock.MaterialRefused.because(
            "NO_EXPIRY", "Give the expiry date and time from the certificate."
        )
    lot = stock.lot_receive(
        actor=actor(request),
        material=material,
        number=payload.number,
        expires_at=expires_at,
        retest_at=aware(payload.retest_at, "retest date"),
        potency=_potency(payload.potency),
        containers=[q.strip() if isinstance(q, str) else q for q in payload.containers],
        supplier=payload.supplier,
        supplier_lot=payload.supplier_lot,
        location=payload.location,
    )
    return Status(201, lot_detail(material.code, lot.number))


SIGNED = {200: LotDetailOut, 403: Problem, 404: Problem, 409: Refusal, 422: Problem}


# The lot's actions come before the lot itself: its number is the rest of the path.
@router.post("/lots/{material}/{path:number}/disposition", response=SIGNED)
def lot_disposition(request: HttpRequest, material: str, number: str, payload: DispositionIn) -> Any:
    """Release, reject, block or quarantine a lot: QA's decision with a reason and an e-signature whose
    meaning is the decision's (released, rejected; approved for a block or a return to quarantine)."""
    require(request.user, DISPOSE)
    lot = lot_found(material, number)
    signer = _signer(request, payload.signature, stock.DISPOSITION_MEANING[LotStatus(payload.status)])
    stock.lot_disposition(
        actor=actor(request), lot=lot, status=payload.status, signer=signer, reason=payload.reason
    )
    return lot_detail(material, number)


@router.post("/lots/{material}/{path:number}/retest", response=SIGNED)
def lot_retest_extend(request: HttpRequest, material: str, number: str, payload: RetestIn) -> Any:
    """Move the retest date-time on after a new test result (MAT-03); never past the expiry. Signed."""
    require(request.user, DISPOSE)
    lot = lot_found(material, number)
    retest_at = aware(payload.retest_at, "retest date")
    assert retest_at is not None
    signer = _signer(request, payload.signature, Meaning.APPROVED)
    stock.lot_retest_extend(
        actor=actor(request), lot=lot, retest_at=retest_at, signer=signer, reason=payload.reason
    )
    return lot_detail(material, number)


@router.post("/lots/{material}/{path:number}/expiry", response=SIGNED)
def lot_expiry_correct(request: HttpRequest, material: str, number: str, payload: ExpiryIn) -> Any:
    """Correct a lot's expiry (a mistyped certificate, a supplier's notice); the old one stays in the
    audit trail and every earlier signature shows the lot changed after it. Signed."""
    require(request.user, DISPOSE)
    lot = lot_found(material, number)
    expires_at = aware(payload.expires_at, "expiry")
    assert expires_at is not None
    signer = _signer(request, payload.signature, Meaning.APPROVED)
    stock.lot_expiry_correct(
        actor=actor(request), lot=lot, expires_at=expires_at, signer=signer, reason=payload.reason
    )
    return lot_detail(material, number)


@router.get("/lots/{material}/{path:number}", response={200: LotDetailOut, 404: Problem})
def lot(request: HttpRequest, material: str, number: str) -> Any:
    """One lot, addressed by its material's code and its lot number, with every container and signature."""
    require(request.user, VIEW)
    return lot_detail(material, number)
