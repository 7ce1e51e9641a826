"""Genealogy pages: a lot's backward or forward trace drawn as SVG, and the recall view (GEN-02, GEN-03)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone

from batchline.genealogy import layout
from batchline.genealogy import selectors as gen
from batchline.materials.models import Lot

from .access import require

TRACE = "materials.trace_lot"


def _amount(quantity: Decimal, unit: str) -> str:
    return f"{quantity.normalize():f} {unit}".strip() if unit else "nothing yet"


def drawing(request: HttpRequest, trace: gen.Trace) -> layout.Drawing:
    """The trace's lots and batches in columns by level, material flowing left to right."""
    sign = -1 if trace.direction == gen.BACKWARD else 1
    can_lot, can_batch = (
        request.user.has_perm("materials.view_lot"),
        request.user.has_perm("execution.view_batch"),
    )
    nodes = []
    for lot in trace.lots:
        href = (
            reverse("lot", args=[lot.id])
            if can_lot
            else reverse("genealogy_trace", args=[lot.id, trace.direction])
        )
        nodes.append(
            layout.Node(
                f"lot:{lot.id}",
                sign * 2 * lot.depth,
                f"Lot {lot.number}",
                f"{lot.material_code} · {lot.status}",
                href,
                "root" if lot.id in trace.roots else "lot",
            )
        )
    for batch in trace.batches:
        column = -2 * batch.depth - 1 if trace.direction == gen.BACKWARD else 2 * batch.depth + 1
        nodes.append(
            layout.Node(
                f"batch:{batch.number}",
                column,
                f"Batch {batch.number}",
                f"{batch.product_code} · {batch.state or 'not here'}",
                reverse("batch", args=[batch.number]) if can_batch and batch.state else "",
                "batch",
            )
        )
    edges = [
        (f"lot:{f.lot_id}", f"batch:{f.batch_number}", _amount(f.quantity, f.unit))
        if f.kind == "consumed"
        else (f"batch:{f.batch_number}", f"lot:{f.lot_id}", _amount(f.quantity, f.unit))
        for f in trace.flows
    ]
    return layout.layered(nodes, edges)


def _lot_numbers(trace: gen.Trace) -> dict[int, str]:
    return {lot.id: lot.number for lot in trace.lots}


@login_required
def trace(request: HttpRequest, pk: int, direction: str) -> HttpResponse:
    require(request.user, TRACE)
    if direction not in (gen.BACKWARD, gen.FORWARD):
        raise Http404("A trace goes backward or forward.")
    lot = get_object_or_404(Lot.objects.select_related("material"), pk=pk)
    found = gen.backward(lot.pk) if direction == gen.BACKWARD else gen.forward(lot.pk)
    context = {
        "lot": lot,
        "trace": found,
        "drawing": drawing(request, found),
        "lot_numbers": _lot_numbers(found),
        "other": gen.FORWARD if direction == gen.BACKWARD else gen.BACKWARD,
    }
    return render(request, "genealogy/trace.html", context)


def _moment(text: str) -> dt.datetime | None:
    """A ``datetime-local`` value in the plant's zone; None when empty or not a date-time."""
    try:
        naive = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return timezone.make_aware(naive) if timezone.is_naive(naive) else naive


@login_required
def recall(request: HttpRequest) -> HttpResponse:
    """Find a lot to trace, or ask which lots a supplier lot or a unit in a time window touched."""
    require(request.user, TRACE)
    q = request.GET
    context: dict[str, Any] = {"q": q}
    number = q.get("lot", "").strip()[:40]
    if number:
        context["lots"] = list(
            Lot.objects.select_related("material").filter(number=number).order_by("id")[:50]
        )
    found: gen.Recall | None = None
    problems = []
    if q.get("supplier_lot", "").strip():
        found = gen.recall_supplier_lot(q["supplier_lot"][:60])
    elif q.get("equipment", "").strip():
        start, end = _moment(q.get("start", "")), _moment(q.get("end", ""))
        if start is None or end is None or start > end:
            problems.append("Give the start and the end of the time window, start first.")
        else:
            found = gen.recall_equipment(q["equipment"].strip()[:40], start, end)
    if found is not None:
        context |= {
            "recall": found,
            "drawing": drawing(request, found.trace),
            "lot_numbers": _lot_numbers(found.trace),
        }
    context["problems"] = problems
    return render(request, "genealogy/recall.html", context, status=422 if problems else 200)
