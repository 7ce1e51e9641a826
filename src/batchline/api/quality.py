"""Quality over the API: exception dispositions, deviations and the review of a batch, as the pages do them.

Same services, same gates and signatures; a refusal is 409 with its reasons.
"""

from __future__ import annotations

from typing import Any, Literal

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Router, Schema, Status
from pydantic import Field

from batchline.execution import instruments
from batchline.execution.models import Batch
from batchline.quality import selectors, services
from batchline.quality.models import Deviation
from batchline.rules import exceptions as taxonomy
from batchline.rules import numbers
from batchline.signatures.models import Meaning
from batchline.web.access import require

from .production import Refusal, _actor, _signer
from .schemas import Problem, SignatureIn

quality = Router(tags=["quality"])

Text = Field(default="", max_length=20000)


def _batch(number: str) -> Batch:
    return get_object_or_404(
        Batch.objects.select_related("recipe").defer("control_recipe", "recipe__document"), number=number
    )


def _exception_out(e: Any) -> dict[str, Any]:
    kind = taxonomy.classify(e.code)
    d = getattr(e, "disposition", None)
    return {
        "id": e.pk,
        "code": e.code,
        "category": kind.category,
        "kind": kind.kind,
        "severity": e.severity,
        "blocks": e.blocks,
        "message": e.message,
        "step": e.step.key if e.step else None,
        "material": e.material,
        "equipment": e.equipment,
        "user": e.user.username if e.user else None,
        "at": e.at.isoformat(),
        "disposition": None
        if d is None
        else {
            "decision": d.decision,
            "comment": d.comment,
            "deviation": d.deviation_number or None,
            "by": d.by.username,
            "at": d.at.isoformat(),
        },
    }


def _number(v: Any) -> str | None:
    """The recorded number, exact ("0.5013"); the value's ``text`` is how it was typed."""
    return None if v.number is None else numbers.shown(v.number)


@quality.get("/batches/{number}/review", response=dict[str, Any])
def review(request: HttpRequest, number: str) -> dict[str, Any]:
    """What QA reviews: the completeness check, exceptions with dispositions, critical values, changes."""
    require(request.user, "execution.view_batch")
    screen = selectors.review_screen(_batch(number), qp_required=services.qp_required())
    readings = instruments.readings_of(v.pk for v in screen.critical_values if v.source == "device")
    return {
        "batch": number,
        "state": screen.batch.state,
        "rules_version": taxonomy.VERSION,
        "complete": screen.complete,
        "checklist": [{**c.as_dict(), "answer": c.answer, "summary": c.summary} for c in screen.checks],
        "open_exceptions": screen.open_exceptions,
        "exceptions": [_exception_out(e) for e in screen.exceptions],
        # The reading order of the review page (rules/triage.py): results, process, refused attempts
        # folded by kind; each group's open exceptions are what "choose this group" disposes of.
        "groups": [
            {
                "key": g.key,
                "tier": g.tier,
                "label": g.label,
                "severity": g.severity,
                "folded": g.folded,
                "exceptions": [e.id for e in g.exceptions],
                "open": g.open_ids,
            }
            for g in screen.groups
        ],
        "refused_summary": screen.refused_summary,
        "critical_values": [
            {
                "step": v.step.key,
                "name": v.name,
                "text": v.text,
                "number": _number(v),
                "unit": v.unit,
                "in_specification": v.in_specification,
                "source": v.source,
                # Where a value read from a machine came from; a value typed in its place is "manual".
                "reading": readings.get(v.pk),
            }
            for v in screen.critical_values
        ],
        "corrections": [
            {
                "step": v.step.key,
                "name": v.name,
                "was": v.corrects.text,
                "was_number": _number(v.corrects),
                "now": v.text,
                "now_number": _number(v),
                "reason": v.reason,
            }
            for v in screen.corrections
            if v.corrects
        ],
        "deviations": [{"number": d.deviation.number, "state": d.deviation.state} for d in screen.deviations],
        "stages": [{"stage": s.stage, "by": s.by.username, "at": s.at.isoformat()} for s in screen.stages],
        "next_stage": screen.next_stage,
    }


class DispositionIn(Schema):
    exceptions: list[int] = Field(max_length=1000)
    decision: Literal["accepted", "deviation"]
    comment: str = Text
    deviation: str = Field(default="", max_length=40)
    batch: str = Field(default="", max_length=40, description="when given, only this batch's exceptions")
    signature: SignatureIn


@quality.post(
    "/exceptions/disposition", response={200: list[dict[str, Any]], 403: Problem, 409: Refusal, 422: Problem}
)
def disposition(request: HttpRequest, payload: DispositionIn) -> Any:
    """Disposition one or more exceptions of one batch (all open ones of a group at once, say) under one
    signing: a disposition and a signature record each, bound to that exception (21 CFR 11.70)."""
    require(request.user, "execution.disposition_exception")
    batch = _batch(payload.batch) if payload.batch else None
    signer = _signer(request, payload.signature, Meaning.APPROVED)
    made = services.exceptions_disposition(
        actor=_actor(request),
        signer=signer,
        exception_ids=payload.exceptions,
        decision=payload.decision,
        comment=payload.comment,
        deviation_number=payload.deviation,
        batch=batch,
    )
    return [{"exception": d.exception_id, "decision": d.decision} for d in made]


class DeviationIn(Schema):
    title: str = Field(max_length=200)
    classification: Literal["minor", "major", "critical"]
    description: str = Text
    immediate_action: str = Text
    batches: list[str] = Field(default_factory=list, max_length=100)
    lots: list[str] = Field(default_factory=list, max_length=100)
    equipment: list[str] = Field(default_factory=list, max_length=100)
    exceptions: list[int] = Field(default_factory=list, max_length=1000)
    signature: SignatureIn


def _deviation_out(d: Deviation) -> dict[str, Any]:
    return {
        **services.deviation_content(d),
        "raised_by": d.raised_by.username,
        "raised_at": d.raised_at.isoformat(),
    }


@quality.post("/deviations", response={201: dict[str, Any], 403: Problem, 409: Refusal, 422: Problem})
def deviation_raise(request: HttpRequest, payload: DeviationIn) -> Any:
    require(request.user, "quality.raise_deviation")
    dev = services.deviation_raise(
        actor=_actor(request),
        signer=_signer(request, payload.signature, Meaning.PERFORMED),
        title=payload.title,
        classification=payload.classification,
        description=payload.description,
        immediate_action=payload.immediate_action,
        batches=payload.batches,
        lots=payload.lots,
        equipment=payload.equipment,
        exception_ids=payload.exceptions,
    )
    return Status(201, _deviation_out(dev))


@quality.get("/deviations/{number}", response=dict[str, Any])
def deviation_get(request: HttpRequest, number: str) -> dict[str, Any]:
    require(request.user, "quality.view_deviation")
    return _deviation_out(get_object_or_404(Deviation.objects.select_related("raised_by"), number=number))


class DeviationStepIn(Schema):
    command: Literal["investigate", "submit", "return", "close"]
    immediate_action: str = Text
    investigation: str = Text
    root_cause: str = Text
    impact: str = Text
    capa_reference: str = Field(default="", max_length=60)
    comment: str = Text
    signature: SignatureIn


_STEP_MEANING = {
    "investigate": Meaning.REVIEWED,
    "submit": Meaning.PERFORMED,
    "return": Meaning.REVIEWED,
    "close": Meaning.APPROVED,
}


@quality.post(
    "/deviations/{number}/step", response={200: dict[str, Any], 403: Problem, 409: Refusal, 422: Problem}
)
def deviation_step(request: HttpRequest, number: str, payload: DeviationStepIn) -> Any:
    require(request.user, services.DEVIATION_STEP_PERMISSION[payload.command])
    dev = get_object_or_404(Deviation, number=number)
    fields = {
        k: getattr(payload, k)
        for k in ("immediate_action", "investigation", "root_cause", "impact", "capa_reference")
        if getattr(payload, k)
    }
    dev = services.deviation_transition(
        actor=_actor(request),
        signer=_signer(request, payload.signature, _STEP_MEANING[payload.command]),
        deviation=dev,
        command=payload.command,
        fields=fields,
        comment=payload.comment,
    )
    return _deviation_out(Deviation.objects.select_related("raised_by").get(pk=dev.pk))


class StageIn(Schema):
    stage: Literal["production_review", "qa_review", "qp_certification", "released", "rejected"]
    comment: str = Text
    signature: SignatureIn


@quality.post(
    "/batches/{number}/review", response={200: dict[str, Any], 403: Problem, 409: Refusal, 422: Problem}
)
def review_sign(request: HttpRequest, number: str, payload: StageIn) -> Any:
    require(request.user, services.STAGE_PERMISSION[payload.stage])
    row = services.review_sign(
        actor=_actor(request),
        signer=_signer(request, payload.signature, services.STAGE_MEANING[payload.stage]),
        batch=_batch(number),
        stage=payload.stage,
        comment=payload.comment,
    )
    return {"batch": number, "stage": row.stage, "state": Batch.objects.get(number=number).state}
