"""Containers over the API, addressed by the code on their label: read, returned or wasted, labelled.

What is left of a container dispensed for a batch goes back to stock or to waste through the
services of the batch's remainders panel (``execution.returns``): the batch is the one the
container was weighed out for, so the same rules (the batch's state, a reason for a part, a
signature for waste) hold. A label is printed as on the Materials page
(``materials.printing``): built from the records, logged, a reprint only with a reason.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Router, Schema, Status
from ninja.errors import HttpError
from pydantic import Field

from batchline.execution import returns
from batchline.execution.models import Batch
from batchline.materials.models import Container
from batchline.materials.printing import container_label_print
from batchline.signatures.models import Meaning
from batchline.web.access import current_user, require

from ..production import Refusal, _signer
from ..remainders import ReturnIn, ReturnOut, WasteIn, WasteOut, _n
from ..schemas import Problem
from .common import VIEW, LabelPrintOut, actor, container_found, print_out, text

router = Router(tags=["inventory"])
RECEIVE = "materials.receive_material"


class ContainerDetailOut(Schema):
    code: str
    material: str
    material_name: str
    lot: str
    lot_status: str
    quantity: str
    unit: str
    tare: str | None
    location: str
    reserved_for: str | None
    dispensed_for: str | None
    returned_from: str | None
    source: str | None = Field(description="the container it was weighed or returned out of")
    created_at: dt.datetime
    prints: list[LabelPrintOut]


class LabelIn(Schema):
    format: Literal["pdf", "zpl"] = "pdf"
    reason: str = Field(default="", max_length=500, description="required for a reprint")


class LabelPrinted(LabelPrintOut):
    content_type: str
    content_base64: str = Field(
        description="the label as printed, once: a second copy is a reprint and needs its reason"
    )


@router.get("/containers/{code}", response={200: ContainerDetailOut, 404: Problem})
def container(request: HttpRequest, code: str) -> dict[str, Any]:
    """One container by its label's code: what it holds, where it is, and every print of its label."""
    require(request.user, VIEW)
    c = container_found(code)
    return {
        "code": c.code,
        "material": c.lot.material.code,
        "material_name": c.lot.material.name,
        "lot": c.lot.number,
        "lot_status": c.lot.status,
        "quantity": text(c.quantity),
        "unit": c.unit,
        "tare": text(c.tare),
        "location": c.location,
        "reserved_for": c.reserved_for,
        "dispensed_for": c.dispensed_for,
        "returned_from": c.returned_from,
        "source": c.source.code if c.source else None,
        "created_at": c.created_at,
        "prints": [print_out(p) for p in c.prints.select_related("user", "container").order_by("id")],
    }


def _dispensed_for(code: str) -> tuple[Container, Batch]:
    """The container and the batch it was weighed out for; a refusal in words if it was not."""
    found = container_found(code)
    if not found.dispensed_for:
        raise returns.RemainderRefused.because(
            "NOT_DISPENSED",
            f"Container {found.code} was not weighed out for a batch: only what is left of a container "
            "dispensed for a batch goes back to stock or to waste.",
        )
    batch = Batch.objects.filter(number=found.dispensed_for).first()
    if batch is None:
        raise HttpError(
            404, f"Batch {found.dispensed_for!r}, which {found.code} was weighed out for, is gone."
        )
    return found, batch


@router.post(
    "/containers/{code}/return",
    response={201: ReturnOut, 403: Problem, 404: Problem, 409: Refusal, 422: Problem},
)
def container_return(request: HttpRequest, code: str, payload: ReturnIn) -> Any:
    """What is left in a container dispensed for a batch, back to stock in a new labelled container (WD-12)."""
    require(request.user, returns.PERMISSION)
    source, batch = _dispensed_for(code)
    made = returns.remainder_return(
        actor=actor(request),
        user=current_user(request),
        batch=batch,
        container=source.code,
        location=payload.location,
        scale=payload.scale,
        reason=payload.reason,
    )
    return Status(
        201,
        {
            "container": made.code,
            "from_container": source.code,
            "lot": made.lot.number,
            "quantity": _n(made.quantity),
            "unit": made.unit,
            "location": made.location,
            "returned_from": made.returned_from,
        },
    )


@router.post(
    "/containers/{code}/waste",
    response={200: WasteOut, 403: Problem, 404: Problem, 409: Refusal, 422: Problem},
)
def container_waste(request: HttpRequest, code: str, payload: WasteIn) -> Any:
    """What is left in a container dispensed for a batch (or a part of it), destroyed: signed as performed."""
    require(request.user, returns.PERMISSION)
    source, batch = _dispensed_for(code)
    signer = _signer(request, payload.signature, Meaning.PERFORMED)
    entry = returns.remainder_waste(
        actor=actor(request),
        user=current_user(request),
        batch=batch,
        container=source.code,
        reason=payload.reason,
        quantity=payload.quantity,
        unit=payload.unit,
        scale=payload.scale,
        signer=signer,
    )
    return {
        "container": source.code,
        "lot": source.lot.number,
        "quantity": _n(-entry.quantity),
        "unit": entry.unit,
        "remaining": _n(entry.balance),
    }


@router.post(
    "/containers/{code}/labels",
    response={201: LabelPrinted, 403: Problem, 404: Problem, 409: Refusal, 422: Problem},
)
def container_label(request: HttpRequest, code: str, payload: LabelIn) -> Any:
    """Print the container's label (LBL-02): the first print, or a reprint with its reason; logged first.

    Whoever receives material prints labels; whoever returns material to stock also prints the
    label of a container returned from a batch, as on the batch's remainders panel.
    """
    user = current_user(request)
    if not user.has_perm(returns.PERMISSION):  # refused before anything is looked up
        require(user, RECEIVE)
    c = container_found(code)
    if not c.returned_from:
        require(user, RECEIVE)
    printed = container_label_print(
        actor=actor(request), container=c, fmt=payload.format, reason=payload.reason
    )
    return Status(
        201,
        {
            **print_out(printed.record),
            "content_type": printed.content_type,
            "content_base64": base64.b64encode(printed.content).decode("ascii"),
        },
    )
