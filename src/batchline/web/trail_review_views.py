"""The audit-trail review pages (Annex 11 §9, A11-13): the report of reviews done and due, a review of one
scope with its entries that need attention first, the marks and the signature.

Thin over ``auditreview.services`` and ``auditreview.selectors``: every refusal is shown in the
service's words and writes nothing. QA reviewers and approvers review; auditors read.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from batchline.audit.selectors import record_types
from batchline.audit.services import Actor, record_type_of
from batchline.auditreview import selectors, services
from batchline.auditreview.models import ReviewState, Scope, TrailReview
from batchline.rules.verdict import Refused
from batchline.signatures.models import Meaning, Signature
from batchline.signatures.services import SignatureRefused, signing_session_open, username_required

from .access import record_id, require, signer_posted

READ = "accounts.view_audit_trail"


def _date(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value.strip()) if value and value.strip() else None
    except ValueError:
        return None


def _refusal(exc: Exception) -> list[str]:
    if isinstance(exc, Refused):
        return [r.message for r in exc.verdict.reasons]
    return [str(exc)]


@login_required
def trail_reviews(request: HttpRequest) -> HttpResponse:
    """Reviews done and due: each ended batch's trail, the periodic review, and every review."""
    require(request.user, READ)
    return _index_page(request)


def _index_page(request: HttpRequest, *, status: int = 200, **extra: Any) -> HttpResponse:
    context = {
        "report": selectors.report(now=timezone.now()),
        "reviews": selectors.reviews(),
        "scopes": Scope.choices,
        "record_types": record_types(),
        "can_review": request.user.has_perm(services.PERMISSION),
        "form": request.POST if request.method == "POST" else request.GET,
        **extra,
    }
    return render(request, "auditreview/index.html", context, status=status)


@login_required
@require_POST
def trail_review_open(request: HttpRequest) -> HttpResponse:
    require(request.user, services.PERMISSION)
    p = request.POST
    try:
        review = services.trail_review_open(
            actor=Actor.of(request.user, via="web"),
            scope=p.get("scope", ""),
            batch_number=p.get("batch_number", "")[:40],
            record_type=p.get("record_type", "")[:80],
            username=p.get("username", "")[:150],
            since=_date(p.get("since")),
            until=_date(p.get("until")),
        )
    except Refused as exc:
        return _index_page(request, status=422, refusal=_refusal(exc))
    messages.success(
        request,
        f"Review of {review.scope_text} opened: {review.entry_count} entries, "
        f"{len(review.flagged)} need attention.",
    )
    return HttpResponseRedirect(reverse("trail_review", args=[review.pk]))


def _review_page(
    request: HttpRequest, review: TrailReview, *, status: int = 200, **extra: Any
) -> HttpResponse:
    flagged_page, flagged = selectors.flagged_page(review, request.GET.get("flagged"))
    other_page, others = selectors.other_page(review, request.GET.get("page"))
    marked = selectors.marked_count(review)
    signature = None
    if review.state == ReviewState.SIGNED:
        signature = Signature.objects.filter(
            record_type=record_type_of(review), record_id=str(review.pk)
        ).first()
    context = {
        "review": review,
        "flagged_page": flagged_page,
        "flagged": flagged,
        "other_page": other_page,
        "others": others,
        "marked": marked,
        "unmarked": len(review.flagged) - marked,
        "signature": signature,
        "can_review": review.state == ReviewState.OPEN and request.user.has_perm(services.PERMISSION),
        "username_required": username_required(request),
        "form": request.POST if request.method == "POST" else {},
        "chosen": request.POST.getlist("entry") if request.method == "POST" else [],
        **extra,
    }
    return render(request, "auditreview/review.html", context, status=status)


@login_required
def trail_review(request: HttpRequest, pk: int) -> HttpResponse:
    require(request.user, READ)
    return _review_page(request, get_object_or_404(TrailReview, pk=pk))


@login_required
@require_POST
def trail_review_mark(request: HttpRequest, pk: int) -> HttpResponse:
    require(request.user, services.PERMISSION)
    review = get_object_or_404(TrailReview, pk=pk)
    try:
        made = services.trail_review_mark(
            actor=Actor.of(request.user, via="web"),
            review=review,
            entry_ids=[record_id(v) for v in request.POST.getlist("entry")],
            comment=request.POST.get("comment", ""),
        )
    except Refused as exc:
        return _review_page(request, review, status=422, refusal=_refusal(exc))
    messages.success(request, f"{len(made)} entr{'y' if len(made) == 1 else 'ies'} marked reviewed.")
    back = reverse("trail_review", args=[review.pk])
    shown = record_id(request.POST.get("flagged_page"))
    return HttpResponseRedirect(f"{back}?flagged={shown}" if shown > 1 else back)


@login_required
@require_POST
def trail_review_sign(request: HttpRequest, pk: int) -> HttpResponse:
    require(request.user, services.PERMISSION)
    review = get_object_or_404(TrailReview, pk=pk)
    try:
        signer = signer_posted(request, Meaning.REVIEWED)
        services.trail_review_sign(actor=Actor.of(request.user, via="web"), signer=signer, review=review)
    except (Refused, SignatureRefused) as exc:
        words = _refusal(exc)
        return _review_page(request, review, status=422, refusal=words, sign_error=" ".join(words))
    signing_session_open(signer)
    messages.success(request, f"Audit-trail review of {review.scope_text} signed.")
    return HttpResponseRedirect(reverse("trail_review", args=[review.pk]))
