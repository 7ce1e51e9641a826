"""What the inventory endpoints share: how a lot and a container are found and shown, and times read."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from ninja import Schema
from ninja.errors import HttpError

from batchline.audit.services import Actor
from batchline.materials import selectors
from batchline.materials import services as stock
from batchline.materials.models import Container, LabelPrint, Lot
from batchline.rules import materials as rules
from batchline.signatures.models import Signature
from batchline.signatures.services import signature_intact

from ..schemas import SignatureOut

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
    usable: bool
    not_usable_because: list[str]
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
    signatures: list[SignatureOut]


class LabelPrintOut(Schema):
    id: int
    container: str
    reprint: bool
    reason: str
    format: str
    template: str = ""
    template_code: str = ""
    template_version: int | None = None
    content_sha256: str
    printed_by: str
    printed_name: str
    printed_at: dt.datetime


def actor(request: HttpRequest) -> Actor:
    return Actor.of(request.user, via="api")


def text(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


def aware(value: dt.datetime | None, what: str) -> dt.datetime | None:
    """A time sent by a client: one without an offset is read in the site's time zone, as the pages
    read a typed one; one beyond the calendar the database keeps is refused in words."""
    if value is None:
        return None
    try:
        if timezone.is_naive(value):
            value = timezone.make_aware(value)
        return value.astimezone(dt.UTC)
    except (OverflowError, ValueError) as exc:
        raise stock.MaterialRefused.because(
            "BAD_DATE", f"The {what} {value.isoformat()} lies outside the calendar Batchline keeps."
        ) from exc


def lot_found(material: str, number: str) -> Lot:
    """The lot of ``material`` numbered ``number``, with its stock; 404 in words if there is none."""
    lot = selectors.lots_with_stock().filter(material__code=material, number=number).first()
    if lot is None:
        raise HttpError(404, f"No lot {number[:40]!r} of material {material[:40]!r} is known here.")
    return lot


def container_found(code: str) -> Container:
    container = selectors.container_by_code(code.strip().upper()[:40])
    if container is None:
        raise HttpError(404, f"No container {code[:40]!r} is known here: check the label.")
    return container


def lot_out(lot: Any, now: dt.datetime) -> dict[str, Any]:
    """A lot of ``selectors.lots_with_stock()`` and whether it may be used at ``now``, in words."""
    verdict = rules.lot_usable(lot.view(), now, timezone.get_current_timezone())
    return {
        "material": lot.material.code,
        "material_name": lot.material.name,
        "number": lot.number,
        "status": lot.status,
        "usable": verdict.allowed,
        "not_usable_because": [r.message for r in verdict.reasons],
        "supplier": lot.supplier,
        "supplier_lot": lot.supplier_lot,
        "received_at": lot.received_at,
        "expires_at": lot.expires_at,
        "retest_at": lot.retest_at,
        "potency": text(lot.potency),
        "produced_by_batch": lot.produced_by_batch,
        "containers": lot.container_count,
        "quantity": text(lot.on_hand) or "0",
        "unit": lot.material.unit,
    }


def container_out(c: Container) -> dict[str, Any]:
    return {
        "code": c.code,
        "quantity": text(c.quantity),
        "unit": c.unit,
        "tare": text(c.tare),
        "location": c.location,
        "reserved_for": c.reserved_for,
        "dispensed_for": c.dispensed_for,
        "returned_from": c.returned_from,
        "created_at": c.created_at,
    }


def signatures_out(lot: Lot) -> list[dict[str, Any]]:
    """The lot's signatures, each with its manifestation and whether it still binds the lot as it is."""
    content = stock.lot_content(lot)
    found = Signature.objects.filter(record_type="materials.lot", record_id=str(lot.pk)).order_by(
        "signed_at", "id"
    )
    return [
        {
            "id": sig.pk,
            "signer_username": sig.signer_username,
            "signer_name": sig.signer_name,
            "meaning": sig.meaning,
            "signed_at": sig.signed_at,
            "comment": sig.comment,
            "method": sig.method,
            "witness": sig.witness,
            "manifestation": sig.manifestation(),
            "binding_intact": signature_intact(sig, content),
        }
        for sig in found
    ]


def lot_detail(material: str, number: str) -> dict[str, Any]:
    """The lot as it stands now, with every container and every signature."""
    lot = lot_found(material, number)
    return {
        **lot_out(lot, timezone.now()),
        "container_list": [container_out(c) for c in Container.objects.filter(lot=lot).order_by("code")],
        "signatures": signatures_out(lot),
    }


def print_out(p: LabelPrint) -> dict[str, Any]:
    """A print record; ``template`` as recorded ("CONT-01 v2", empty: the built-in heading)."""
    code, _, version = p.template.rpartition(" v")
    return {
        "id": p.pk,
        "container": p.container.code,
        "reprint": p.reprint,
        "reason": p.reason,
        "format": p.format,
        "template": p.template,
        "template_code": code,
        "template_version": int(version) if code and version.isdigit() else None,
        "content_sha256": p.content_sha256,
        "printed_by": p.user.username,
        "printed_name": p.user.printed_name,
        "printed_at": p.at,
    }
