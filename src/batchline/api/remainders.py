"""What is left of a batch's dispensed containers over the API: the same services as the execution screen.

``GET /batches/{number}/containers`` lists the containers weighed out for the
batch that still hold material; ``POST …/containers/{code}/return`` puts the
remainder back into stock in a new container, ``POST …/containers/{code}/waste``
destroys it with the person's signature. A refusal is 409 with every reason and
writes nothing.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Router, Schema, Status
from pydantic import Field

from batchline.audit.services import Actor
from batchline.execution import returns
from batchline.execution.models import Batch
from batchline.signatures.models import Meaning
from batchline.signatures.services import signer_authenticate
from batchline.web.access import current_user, require

from .production import Refusal
from .schemas import Problem, SignatureIn

router = Router(tags=["batches"])


class RemainderOut(Schema):
    container: str
    lot: str
    material_code: str
    material_name: str
    quantity: Decimal = Field(description="what the ledger says the container still holds")
    unit: str
    location: str


class ReturnIn(Schema):
    location: str = Field(min_length=1, max_length=60, description="where the returned container is put")
    scale: str = Field(
        default="",
        max_length=40,
        description="the scale to weigh the remainder on (read over MT-SICS); empty: the whole remainder "
        "the ledger holds",
    )
    reason: str = Field(default="", max_length=500, description="needed when less than all of it comes back")


class ReturnOut(Schema):
    container: str = Field(description="the new container of stock, labelled as returned from the batch")
    from_container: str
    lot: str
    quantity: Decimal
    unit: str
    location: str
    returned_from: str


class WasteIn(Schema):
    reason: str = Field(min_length=1, max_length=500)
    quantity: str = Field(
        default="", max_length=40, description="a part of the remainder, typed; empty: all of it"
    )
    unit: str = Field(default="", max_length=30, description="of the quantity; empty: the container's")
    scale: str = Field(default="", max_length=40, description="or weigh the part on this scale")
    signature: SignatureIn


class WasteOut(Schema):
    container: str
    lot: str
    quantity: Decimal = Field(description="destroyed")
    unit: str
    remaining: Decimal


def _n(value: Decimal) -> Decimal:
    """A quantity as people write it (0.1953, not 0.195300), whatever the database returned."""
    return Decimal(f"{value.normalize():f}")


def _batch(request: HttpRequest, number: str) -> Batch:
    user = current_user(request)
    if not user.has_perm(returns.PERMISSION):
        require(user, "execution.view_batch")
    return get_object_or_404(Batch, number=number)


@router.get("/{number}/containers", response=list[RemainderOut])
def remainder_list(request: HttpRequest, number: str) -> list[dict[str, Any]]:
    """The containers weighed out for the batch that still hold material."""
    batch = _batch(request, number)
    return [
        {
            "container": c.code,
            "lot": c.lot.number,
            "material_code": c.lot.material.code,
            "material_name": c.lot.material.name,
            "quantity": _n(c.quantity),
            "unit": c.unit,
            "location": c.location,
        }
        for c in returns.remainders(batch.number)
    ]


@router.post(
    "/{number}/containers/{code}/return", response={201: ReturnOut, 403: Problem, 409: Refusal, 422: Problem}
)
def remainder_return(request: HttpRequest, number: str, code: str, payload: ReturnIn) -> Any:
    """What is left in a container dispensed for the batch, back to stock in a new labelled container."""
    require(request.user, returns.PERMISSION)
    batch = _batch(request, number)
    made = returns.remainder_return(
        actor=Actor.of(request.user, via="api"),
        user=current_user(request),
        batch=batch,
        container=code,
        location=payload.location,
        scale=payload.scale,
        reason=payload.reason,
    )
    return Status(
        201,
        {
            "container": made.code,
            "from_container": made.source.code if made.source else "",
            "lot": made.lot.number,
            "quantity": _n(made.quantity),
            "unit": made.unit,
            "location": made.location,
            "returned_from": made.returned_from,
        },
    )


@router.post(
    "/{number}/containers/{code}/waste", response={200: WasteOut, 403: Problem, 409: Refusal, 422: Problem}
)
def remainder_waste(request: HttpRequest, number: str, code: str, payload: WasteIn) -> Any:
    """What is left in a container dispensed for the batch (or a part of it), destroyed: signed."""
    require(request.user, returns.PERMISSION)
    batch = _batch(request, number)
    signer = signer_authenticate(
        request=request,
        username=payload.signature.username,
        password=payload.signature.password,
        meaning=Meaning.PERFORMED,
    )
    entry = returns.remainder_waste(
        actor=Actor.of(request.user, via="api"),
        user=current_user(request),
        batch=batch,
        container=code,
        reason=payload.reason,
        quantity=payload.quantity,
        unit=payload.unit,
        scale=payload.scale,
        signer=signer,
    )
    return {
        "container": entry.container.code,
        "lot": entry.container.lot.number,
        "quantity": _n(-entry.quantity),
        "unit": entry.unit,
        "remaining": _n(entry.balance),
    }
