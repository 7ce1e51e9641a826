"""Warehouse and QA pages: materials and lots, receiving, labels, lot disposition (MAT-01…05, WD-07)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from batchline.audit.services import Actor, ReasonRequired
from batchline.materials import services as stock
from batchline.materials.models import Container, Lot, LotStatus, Material
from batchline.materials.printing import container_label_print
from batchline.rules import materials as rules
from batchline.signatures.models import Signature
from batchline.signatures.services import (
    SignatureRefused,
    signature_intact,
    signer_authenticate,
    signing_session_open,
    username_required,
)

from .access import record_id, require

VIEW = "materials.view_lot"


@login_required
def lot_list(request: HttpRequest) -> HttpResponse:
    require(request.user, VIEW)
    now = timezone.now()
    lots = (
        Lot.objects.select_related("material")
        # A lot without containers (an output lot before production) holds 0, not "None".
        .annotate(stock=Coalesce(Sum("containers__quantity"), Decimal(0)), count=Count("containers"))
        .order_by("material__code", "expires_at")
    )
    rows = [
        {"lot": lot, "verdict": rules.lot_usable(lot.view(), now, timezone.get_current_timezone())}
        for lot in lots
    ]
    return render(request, "materials/lots.html", {"rows": rows})


def _moment(text: str, what: str) -> dt.datetime | None:
    """A date-time typed in the plant's zone (``datetime-local``), aware; None when left empty."""
    if not text.strip():
        return None
    try:
        naive = dt.datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise stock.MaterialRefused.because(
            "BAD_DATE", f"The {what} {text!r} is not a date and time."
        ) from exc
    return timezone.make_aware(naive) if timezone.is_naive(naive) else naive


@login_required
def lot_receive(request: HttpRequest) -> HttpResponse:
    require(request.user, "materials.receive_material")
    materials = Material.objects.order_by("code")
    form = request.POST if request.method == "POST" else {}
    if request.method != "POST":
        return render(request, "materials/receive.html", {"materials": materials, "form": form})
    try:
        material = Material.objects.filter(pk=record_id(request.POST.get("material"))).first()
        if material is None:
            raise stock.MaterialRefused.because("NO_MATERIAL", "Choose the material received.")
        expires_at = _moment(request.POST.get("expires_at", ""), "expiry")
        if expires_at is None:
            raise stock.MaterialRefused.because(
                "NO_EXPIRY", "Give the expiry date and time from the certificate."
            )
        potency = request.POST.get("potency", "").strip()
        lot = stock.lot_receive(
            actor=Actor.of(request.user, via="web"),
            material=material,
            number=request.POST.get("number", ""),
            expires_at=expires_at,
            retest_at=_moment(request.POST.get("retest_at", ""), "retest date"),
            potency=stock.quantity_of(potency, what="potency") if potency else None,
            containers=[q for q in request.POST.get("containers", "").replace(";", " ").split() if q],
            supplier=request.POST.get("supplier", ""),
            supplier_lot=request.POST.get("supplier_lot", ""),
            location=request.POST.get("location", ""),
        )
    except stock.MaterialRefused as exc:
        problems = [r.message for r in exc.verdict.reasons]
        return render(
            request,
            "materials/receive.html",
            {"materials": materials, "form": form, "problems": problems},
            status=422,
        )
    messages.success(request, f"Lot {lot.number} received into quarantine; print its container labels.")
    return HttpResponseRedirect(reverse("lot", args=[lot.pk]))


def _lot_page(request: HttpRequest, lot: Lot, *, status: int = 200, **extra: Any) -> HttpResponse:
    now = timezone.now()
    content = stock.lot_content(lot)
    sigs = Signature.objects.filter(record_type="materials.lot", record_id=str(lot.pk)).order_by("signed_at")
    containers = lot.containers.annotate(print_count=Count("prints")).order_by("code")
    context = {
        "lot": lot,
        "verdict": rules.lot_usable(lot.view(), now, timezone.get_current_timezone()),
        "containers": containers,
        "stock": sum((c.quantity for c in containers), Decimal(0)),
        "signatures": [{"signature": s, "intact": signature_intact(s, content)} for s in sigs],
        "statuses": [s for s in LotStatus if s != lot.status],
        "can_disposition": request.user.has_perm("materials.disposition_lot"),
        "can_print": request.user.has_perm("materials.receive_material"),
        "username_required": username_required(request),
        **extra,
    }
    return render(request, "materials/lot.html", context, status=status)


@login_required
def lot_detail(request: HttpRequest, pk: int) -> HttpResponse:
    require(request.user, VIEW)
    return _lot_page(request, get_object_or_404(Lot.objects.select_related("material"), pk=pk))


@login_required
@require_POST
def lot_disposition(request: HttpRequest, pk: int) -> HttpResponse:
    require(request.user, "materials.disposition_lot")
    lot = get_object_or_404(Lot.objects.select_related("material"), pk=pk)
    status = request.POST.get("status", "")
    meaning = stock.DISPOSITION_MEANING.get(LotStatus(status)) if status in LotStatus.values else None
    try:
        if meaning is None:
            raise stock.MaterialRefused.because("UNKNOWN_STATUS", "Choose the lot's new status.")
        signer = signer_authenticate(
            request=request,
            username=request.POST.get("signer_username"),
            password=request.POST.get("signer_password", ""),
            meaning=meaning,
        )
        stock.lot_disposition(
            actor=Actor.of(request.user, via="web"),
            lot=lot,
            status=status,
            signer=signer,
            reason=request.POST.get("reason", ""),
        )
    except stock.MaterialRefused as exc:
        return _lot_page(request, lot, status=422, refusal=[r.message for r in exc.verdict.reasons])
    except (SignatureRefused, ReasonRequired) as exc:
        return _lot_page(request, lot, status=422, refusal=[str(exc)])
    signing_session_open(signer)
    messages.success(request, f"Lot {lot.number} is now {LotStatus(status).label.lower()}.")
    return HttpResponseRedirect(reverse("lot", args=[pk]))


@login_required
@require_POST
def label_print(request: HttpRequest, code: str, fmt: str) -> HttpResponse:
    """Print (or reprint, with a reason) a container's label: every print is logged first."""
    require(request.user, "materials.receive_material")
    container = get_object_or_404(Container.objects.select_related("lot__material"), code=code)
    try:
        printed = container_label_print(
            actor=Actor.of(request.user, via="web"),
            container=container,
            fmt=fmt,
            reason=request.POST.get("reason", ""),
        )
    except stock.MaterialRefused as exc:
        return _lot_page(request, container.lot, status=422, refusal=[r.message for r in exc.verdict.reasons])
    except ReasonRequired as exc:
        return _lot_page(request, container.lot, status=422, refusal=[str(exc)])
    response = HttpResponse(printed.content, content_type=printed.content_type)
    if fmt == "pdf":
        response["Content-Disposition"] = f'inline; filename="{code}.pdf"'
    else:
        response["Content-Disposition"] = f'attachment; filename="{code}.zpl"'
    return response
