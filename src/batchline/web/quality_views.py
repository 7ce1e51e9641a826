"""QA pages: the worklist, review by exception with dispositions and the signed stages, deviations.

Thin over quality/services.py and quality/selectors.py, as the API is; every
refusal is shown in the service's words and writes nothing.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from batchline.audit.services import Actor, ReasonRequired
from batchline.auditreview import selectors as trail_reviews
from batchline.auditreview.services import PERMISSION as REVIEW_TRAIL
from batchline.execution.models import Batch, BatchException, BatchState, Decision
from batchline.quality import qms, selectors, services
from batchline.quality.models import Classification, Deviation, DeviationState, Stage
from batchline.rules import exceptions as taxonomy
from batchline.rules import review as review_rules
from batchline.rules import states, triage
from batchline.rules.verdict import Refused
from batchline.signatures import status as signature_status
from batchline.signatures.models import Meaning
from batchline.signatures.services import (
    SignatureRefused,
    VerifiedSigner,
    signing_session_open,
    username_required,
)

from .access import require, signer_posted

# Whoever holds one of these works in QA's pages (and sees them in the navigation).
QUALITY_PERMISSIONS = (
    "quality.view_deviation",
    "quality.review_production",
    "quality.review_quality",
    "quality.certify_batch",
    "quality.disposition_batch",
    "execution.disposition_exception",
)

# The states in which a batch waits for (or is in) its review.
_WAITING = (BatchState.COMPLETE, BatchState.IN_REVIEW)

_STAGE_PERMISSION = {
    Stage.PRODUCTION_REVIEW: "quality.review_production",
    Stage.QA_REVIEW: "quality.review_quality",
    Stage.QP_CERTIFICATION: "quality.certify_batch",
    Stage.RELEASED: "quality.disposition_batch",
    Stage.REJECTED: "quality.disposition_batch",
}

_COMMAND_LABELS = {
    "investigate": "Start the investigation",
    "submit": "Submit for approval",
    "return": "Return to investigation",
    "close": "Close the deviation",
}

_STEP_MEANING = {
    "investigate": Meaning.REVIEWED,
    "submit": Meaning.PERFORMED,
    "return": Meaning.REVIEWED,
    "close": Meaning.APPROVED,
}

_COMMAND_PERMISSION = {
    "investigate": "quality.investigate_deviation",
    "submit": "quality.investigate_deviation",
    "return": "quality.approve_deviation",
    "close": "quality.approve_deviation",
}


def works_in_quality(user: Any) -> bool:
    return any(user.has_perm(p) for p in QUALITY_PERMISSIONS)


def _require_quality(request: HttpRequest) -> None:
    if not works_in_quality(request.user):
        raise PermissionDenied("Your roles do not allow this: QA's pages are for quality and review roles.")


def _actor(request: HttpRequest) -> Actor:
    return Actor.of(request.user, via="web")


def _signer(request: HttpRequest, meaning: str) -> VerifiedSigner:
    return signer_posted(request, meaning)


def _batch(number: str) -> Batch:
    # The frozen control recipe and the master recipe's document are the size of the whole recipe
    # (megabytes for 1,000 steps) and review by exception reads neither (docs/performance.md).
    return get_object_or_404(
        Batch.objects.select_related("recipe", "created_by").defer("control_recipe", "recipe__document"),
        number=number,
    )


def _ids(values: list[str]) -> list[int]:
    # A tampered form's non-number names no exception: the service then says so.
    return [int(v) for v in values if v.isdigit() and len(v) <= 18] + [0] * sum(
        1 for v in values if not (v.isdigit() and len(v) <= 18)
    )


def _names_as_signed(screen: Any, content: dict[str, Any]) -> None:
    """Each name on the review page as it stood when the person acted or signed (21 CFR 11.50): a
    signer's from the signature, anyone else's from the audit entry of what they did."""
    from batchline.audit.models import AuditEntry

    def acted(record_type: str, ids: list[int]) -> dict[str, str]:
        return dict(
            AuditEntry.objects.filter(
                record_type=record_type,
                record_id__in=[str(i) for i in ids],
                action__in=["create", "record", "correct"],
            )
            .order_by("id")
            .values_list("record_id", "actor_name")
        )

    def printed(then: str | None, user: Any) -> str:
        now = user.printed_name if user else ""
        if not then or then == now:
            return now
        return f"{then} (now {now})"

    shown_values = [*screen.critical_values, *screen.corrections]
    values = acted("execution.stepvalue", [v.pk for v in shown_values])
    for v in shown_values:
        v.entered_name = printed(values.get(str(v.pk)), v.entered_by)
    exceptions = acted("execution.batchexception", [e.pk for e in screen.exceptions])
    signers = {(s["record_type"], s["record_id"]): s["signer_name"] for s in content["signature_records"]}
    for e in screen.exceptions:
        e.user_name = printed(exceptions.get(str(e.pk)), e.user)
        d = getattr(e, "disposition", None)
        if d is not None:
            d.by_name = printed(signers.get(("execution.exceptiondisposition", str(d.pk))), d.by)
    for st in screen.stages:
        st.signer_name = printed(signers.get(("quality.reviewstage", str(st.pk))), st.by)


# --- worklist -----------------------------------------------------------------------------------


@login_required
def worklist(request: HttpRequest) -> HttpResponse:
    """Batches waiting for review with their open exceptions and completeness; open deviations.

    Each row is one reading of its batch (``quality.selectors.read``): the count of open
    exceptions and the checks that fail come from the same facts as its review page.
    """
    _require_quality(request)
    batches = list(
        Batch.objects.filter(state__in=_WAITING)
        .select_related("recipe")
        .defer("control_recipe", "recipe__document")
        .annotate(stages_signed=Count("review_stages"))
        .order_by("created_at", "id")
    )
    rows = []
    for b in batches:
        facts = selectors.facts(b)
        checks = review_rules.completeness(facts)
        rows.append(
            {
                "batch": b,
                "open_exceptions": len(facts.open_exceptions),
                "failing": [c for c in checks if not c.ok],
                "checks": len(checks),
            }
        )
    deviations = Deviation.objects.exclude(state=DeviationState.CLOSED).select_related("raised_by")
    return render(request, "quality/worklist.html", {"rows": rows, "deviations": deviations})


# --- review by exception ------------------------------------------------------------------------


def _review_page(request: HttpRequest, batch: Batch, *, status: int = 200, **extra: Any) -> HttpResponse:
    screen = selectors.review_screen(batch, qp_required=services.qp_required())
    # The lean read: every signature's status without building the whole record (docs/performance.md).
    content, _statuses = signature_status.statuses_of(batch)
    _names_as_signed(screen, content)
    user = request.user
    shown = {e.pk: e for e in screen.exceptions}
    chosen = request.POST.getlist("exception") if request.method == "POST" else []
    groups: list[dict[str, Any]] = [
        {
            "group": g,
            "tier_label": triage.TIER_LABELS[g.tier],
            "open": len(g.open_ids),
            # A folded group with a chosen exception opens again after a refusal, so the choice shows.
            "chosen": any(str(i) in chosen for i in g.open_ids),
            "rows": [
                {
                    "exception": shown[f.id],
                    "type": taxonomy.classify(f.code),
                    "category": taxonomy.CATEGORIES[taxonomy.classify(f.code).category],
                    "disposition": getattr(shown[f.id], "disposition", None),
                }
                for f in g.exceptions
            ],
        }
        for g in screen.groups
    ]
    next_stage = screen.next_stage
    context = {
        "batch": batch,
        "screen": screen,
        "groups": groups,
        "folded": [g for g in groups if g["group"].folded],
        "open_count": screen.open_exceptions,
        "exception_count": len(screen.exceptions),
        "rules_version": taxonomy.VERSION,
        "next_stage": next_stage,
        "next_stage_label": review_rules.STAGE_LABELS.get(next_stage or "", ""),
        "next_stage_meaning": services.STAGE_MEANING.get(next_stage or "", ""),
        "can_sign_next": next_stage is not None and user.has_perm(_STAGE_PERMISSION[Stage(next_stage)]),
        "can_reject": bool(next_stage) and user.has_perm("quality.disposition_batch"),
        "can_disposition": user.has_perm("execution.disposition_exception"),
        "can_raise": user.has_perm("quality.raise_deviation"),
        "decisions": Decision.choices,
        "stage_labels": dict(Stage.choices),
        "username_required": username_required(request),
        "form": request.POST if request.method == "POST" else {},
        "signature_records": content["signature_records"],
        "chosen": chosen,
        # Whether the batch's audit trail was reviewed (Annex 11 §9), and by whom: auditreview.
        "trail_review": trail_reviews.batch_trail_review(batch.number),
        "can_review_trail": user.has_perm(REVIEW_TRAIL),
        **extra,
    }
    return render(request, "quality/review.html", context, status=status)


@login_required
def review(request: HttpRequest, number: str) -> HttpResponse:
    require(request.user, "execution.view_batch")
    return _review_page(request, _batch(number))


def _refusal(exc: Exception) -> list[str]:
    if isinstance(exc, Refused):
        return [r.message for r in exc.verdict.reasons]
    return [str(exc)]


@login_required
@require_POST
def review_disposition(request: HttpRequest, number: str) -> HttpResponse:
    require(request.user, "execution.disposition_exception")
    batch = _batch(number)
    ids = _ids(request.POST.getlist("exception"))
    try:
        signer = _signer(request, Meaning.APPROVED)
        made = services.exceptions_disposition(
            actor=_actor(request),
            signer=signer,
            exception_ids=ids,
            decision=request.POST.get("decision", ""),
            comment=request.POST.get("comment", ""),
            deviation_number=request.POST.get("deviation", ""),
            batch=batch,
        )
    except (Refused, SignatureRefused, ReasonRequired) as exc:
        return _review_page(request, batch, status=422, refusal=_refusal(exc))
    signing_session_open(signer)
    messages.success(request, f"{len(made)} exception{'s' if len(made) != 1 else ''} dispositioned.")
    return HttpResponseRedirect(reverse("review", args=[batch.number]))


@login_required
@require_POST
def review_sign(request: HttpRequest, number: str) -> HttpResponse:
    require(request.user, "execution.view_batch")
    batch = _batch(number)
    stage = request.POST.get("stage", "")
    comment = request.POST.get("comment", "") or request.POST.get("signer_comment", "")
    try:
        if stage not in Stage.values:
            raise services.QualityRefused.because("UNKNOWN_STAGE", "Choose the review stage to sign.")
        signer = _signer(request, services.STAGE_MEANING[stage])
        services.review_sign(actor=_actor(request), signer=signer, batch=batch, stage=stage, comment=comment)
    except (Refused, SignatureRefused, ReasonRequired) as exc:
        return _review_page(request, batch, status=422, refusal=_refusal(exc))
    signing_session_open(signer)
    batch.refresh_from_db()
    label = review_rules.STAGE_LABELS[stage]
    messages.success(
        request,
        f"{label[0].upper()}{label[1:]} of batch {batch.number} signed; "
        f"the batch is {states.LABELS[batch.state]}.",
    )
    return HttpResponseRedirect(reverse("review", args=[batch.number]))


# --- deviations ---------------------------------------------------------------------------------


@login_required
def deviation_list(request: HttpRequest) -> HttpResponse:
    require(request.user, "quality.view_deviation")
    state = request.GET.get("state", "")
    deviations = Deviation.objects.select_related("raised_by").prefetch_related("links")
    if state in DeviationState.values:
        deviations = deviations.filter(state=state)
    elif state == "open":
        deviations = deviations.exclude(state=DeviationState.CLOSED)
    return render(
        request,
        "quality/deviations.html",
        {"deviations": deviations[:500], "state": state, "states": DeviationState.choices},
    )


def _new_page(request: HttpRequest, *, status: int = 200, **extra: Any) -> HttpResponse:
    source = request.POST if request.method == "POST" else request.GET
    # A review page's form posted here to prefill (it carries that page's signing fields): those are
    # neither used nor shown again.
    fields = {k: v for k, v in source.dict().items() if not k.startswith("signer_") and k != "prefill"}
    if "prefill" in source:
        fields.pop("comment", None)
    ids = _ids(source.getlist("exception"))
    exceptions = list(
        BatchException.objects.filter(pk__in=ids).select_related("batch", "step").order_by("at", "id")
    )
    batches = source.get("batches", "") or " ".join(sorted({e.batch.number for e in exceptions}))
    context = {
        "exceptions": exceptions,
        "form": {**fields, "batches": batches},
        "classifications": Classification.choices,
        "username_required": username_required(request),
        **extra,
    }
    return render(request, "quality/deviation_new.html", context, status=status)


def _words(text: str) -> list[str]:
    return [w for w in text.replace(",", " ").replace(";", " ").split() if w]


@login_required
def deviation_new(request: HttpRequest) -> HttpResponse:
    """Raise a deviation directly, or from exceptions chosen on a review page (prefilled)."""
    require(request.user, "quality.raise_deviation")
    if request.method != "POST" or "prefill" in request.POST:
        # Prefilled from a review page's chosen exceptions: by POST, so that the signing fields of the
        # review page's form never travel in a URL (issue 10: they did, as a GET).
        return _new_page(request)
    try:
        signer = _signer(request, Meaning.PERFORMED)
        dev = services.deviation_raise(
            actor=_actor(request),
            signer=signer,
            title=request.POST.get("title", ""),
            classification=request.POST.get("classification", ""),
            description=request.POST.get("description", ""),
            immediate_action=request.POST.get("immediate_action", ""),
            batches=_words(request.POST.get("batches", ""))[:100],
            lots=_words(request.POST.get("lots", ""))[:100],
            equipment=_words(request.POST.get("equipment", ""))[:100],
            exception_ids=_ids(request.POST.getlist("exception"))[:1000],
        )
    except (Refused, SignatureRefused, ReasonRequired) as exc:
        return _new_page(request, status=422, refusal=_refusal(exc))
    signing_session_open(signer)
    messages.success(request, f"Deviation {dev.number} raised.")
    if request.user.has_perm("quality.view_deviation"):
        return HttpResponseRedirect(reverse("deviation", args=[dev.number]))
    return HttpResponseRedirect(reverse("home"))


def _deviation_page(request: HttpRequest, dev: Deviation, *, status: int = 200, **extra: Any) -> HttpResponse:
    user = request.user
    commands = [
        {
            "command": c,
            "label": _COMMAND_LABELS[c],
            "meaning": _STEP_MEANING[c],
            "meaning_label": Meaning(_STEP_MEANING[c]).label,
            "reason_required": t.reason_required,
        }
        for c, t in states.DEVIATION.items()
        if dev.state in t.source and user.has_perm(_COMMAND_PERMISSION[c])
    ]
    # Each thing the deviation concerns once: an exception escalated to the deviation it was raised
    # from was linked twice before issue 11 (both links stay in the record, with their audit entries).
    seen: set[tuple[Any, ...]] = set()
    links = [
        lk
        for lk in dev.links.select_related("exception").order_by("id")
        if not (
            (key := (lk.batch_number, lk.lot_number, lk.equipment_code, lk.exception_id)) in seen
            or seen.add(key)  # type: ignore[func-returns-value]
        )
    ]
    context = {
        "deviation": dev,
        "links": links,
        "batches": sorted({lk.batch_number for lk in links if lk.batch_number}),
        "commands": commands,
        "signatures": signature_status.deviation_signatures(dev),
        "username_required": username_required(request),
        "form": request.POST if request.method == "POST" else {},
        # Its events as the external QMS received them (or not yet): the outbox's qms stream.
        "qms_feed": qms.feed(dev),
        "qms_configured": qms.configured(),
        **extra,
    }
    return render(request, "quality/deviation.html", context, status=status)


@login_required
def deviation_detail(request: HttpRequest, number: str) -> HttpResponse:
    require(request.user, "quality.view_deviation")
    dev = get_object_or_404(Deviation.objects.select_related("raised_by"), number=number)
    return _deviation_page(request, dev)


@login_required
@require_POST
def deviation_step(request: HttpRequest, number: str, command: str) -> HttpResponse:
    require(request.user, "quality.view_deviation")
    dev = get_object_or_404(Deviation.objects.select_related("raised_by"), number=number)
    if command not in _STEP_MEANING:
        return _deviation_page(request, dev, status=422, refusal=[f"{command!r} is not a deviation step."])
    fields = {
        k: request.POST[k]
        for k in ("immediate_action", "investigation", "root_cause", "impact", "capa_reference")
        if request.POST.get(k)
    }
    try:
        signer = _signer(request, _STEP_MEANING[command])
        dev = services.deviation_transition(
            actor=_actor(request),
            signer=signer,
            deviation=dev,
            command=command,
            fields=fields,
            comment=request.POST.get("comment", "") or request.POST.get("signer_comment", ""),
        )
    except (Refused, SignatureRefused, ReasonRequired) as exc:
        return _deviation_page(request, dev, status=422, refusal=_refusal(exc))
    signing_session_open(signer)
    messages.success(request, f"Deviation {dev.number} is now {dev.get_state_display().lower()}.")
    return HttpResponseRedirect(reverse("deviation", args=[dev.number]))
