"""What is left of a batch's dispensed containers, on its execution screen: return to stock or waste.

A small panel of its own, loaded by the screen (``execution/_remainders_slot.html``)
outside the screen's cache, because what it offers depends on the person's
roles. Each action posts with htmx and gets the panel back, with what was done
or the refusal in words (422, nothing written). The label of a container
returned to stock is printed from it, each print logged (LBL-02).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST

from batchline.audit.services import Actor, ReasonRequired
from batchline.equipment.models import Equipment
from batchline.execution import returns, selectors
from batchline.execution.models import Batch
from batchline.materials.models import Container
from batchline.materials.printing import container_label_print
from batchline.rules import returns as rules
from batchline.rules.verdict import Refused
from batchline.signatures.models import Meaning
from batchline.signatures.services import (
    SignatureRefused,
    signer_authenticate,
    signing_session_open,
    username_required,
)

from .access import current_user


def _batch(request: HttpRequest, number: str) -> Batch:
    user = current_user(request)
    if not (user.has_perm("execution.view_batch") or user.has_perm(returns.PERMISSION)):
        raise PermissionDenied("Your roles do not allow reading this batch's materials.")
    try:
        return selectors.batch_by_number(number)
    except Batch.DoesNotExist as exc:
        raise Http404(f"No batch {number}") from exc


def _panel(
    request: HttpRequest, batch: Batch, *, done: str = "", refusal: list[str] | None = None, status: int = 200
) -> HttpResponse:
    user = current_user(request)
    context: dict[str, Any] = {
        "batch": batch,
        "containers": list(returns.remainders(batch.number)),
        "returned": list(returns.returned(batch.number)),
        "open": batch.state in rules.OPEN_STATES,
        "can_move": user.has_perm(returns.PERMISSION),
        "scales": Equipment.objects.filter(equipment_class__is_scale=True).order_by("code"),
        "username_required": username_required(request),
        "done": done,
        "refusal": refusal or [],
    }
    return render(request, "execution/_remainders.html", context, status=status)


@login_required
def remainders(request: HttpRequest, number: str) -> HttpResponse:
    return _panel(request, _batch(request, number))


@login_required
@require_POST
def remainder_action(request: HttpRequest, number: str, code: str, action: str) -> HttpResponse:
    """Return the remainder of ``code`` to stock, or waste it (signed)."""
    if action not in (rules.RETURN, rules.WASTE):
        raise Http404("Unknown action")
    batch = _batch(request, number)
    user = current_user(request)
    actor = Actor.of(user, via="web")
    post = request.POST
    signer = None
    try:
        if action == rules.RETURN:
            made = returns.remainder_return(
                actor=actor,
                user=user,
                batch=batch,
                container=code,
                location=post.get("location", "")[:60],
                scale=post.get("scale", "")[:40],
                reason=post.get("reason", "")[:500],
            )
            done = (
                f"{made.quantity.normalize():f} {made.unit} of {code} went back to stock in {made.code} "
                f"at {made.location}: print its label."
            )
        else:
            signer = signer_authenticate(
                request=request,
                username=(post.get("signer_username") or "").strip() or None,
                password=post.get("signer_password", ""),
                meaning=Meaning.PERFORMED,
            )
            entry = returns.remainder_waste(
                actor=actor,
                user=user,
                batch=batch,
                container=code,
                quantity=post.get("quantity", "")[:40],
                scale=post.get("scale", "")[:40],
                reason=post.get("reason", "")[:500],
                signer=signer,
            )
            done = f"{(-entry.quantity).normalize():f} {entry.unit} of {code} went to waste, signed."
    except Refused as refused:
        return _panel(request, batch, refusal=[r.message for r in refused.verdict.reasons], status=422)
    except (SignatureRefused, ReasonRequired) as exc:
        return _panel(request, batch, refusal=[str(exc)], status=422)
    if signer is not None and not signer.witness:
        signing_session_open(signer)
    return _panel(request, selectors.batch_by_number(number), done=done)


@login_required
@require_POST
def returned_label(request: HttpRequest, number: str, code: str) -> HttpResponse:
    """The label of a container returned to stock from this batch: says so, printed and logged (LBL-02)."""
    batch = _batch(request, number)
    if not current_user(request).has_perm(returns.PERMISSION):
        raise PermissionDenied("Your roles do not allow printing this label.")
    container = (
        Container.objects.select_related("lot__material")
        .filter(code=code, returned_from=batch.number)
        .first()
    )
    if container is None:
        raise Http404(f"No container {code} was returned to stock from batch {batch.number}")
    try:
        printed = container_label_print(
            actor=Actor.of(request.user, via="web"),
            container=container,
            fmt="pdf",
            reason=request.POST.get("reason", ""),
        )
    except Refused as refused:
        return _panel(request, batch, refusal=[r.message for r in refused.verdict.reasons], status=422)
    except ReasonRequired as exc:
        return _panel(request, batch, refusal=[str(exc)], status=422)
    response = HttpResponse(printed.content, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{code}.pdf"'
    return response
