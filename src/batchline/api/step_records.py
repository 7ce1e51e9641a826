"""The step kinds with records of their own over the API: samples, output, labels issued, reconciled
and examined, and the labels of samples and output containers (PDF, each print logged).

The same services as the execution screen (``execution.recording``), so the same gates, refusals
(409 with every reason, recorded for QA) and audit entries; a reprint without a reason is 422.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from django.http import Http404, HttpRequest, HttpResponse
from ninja import Router, Schema, Status
from pydantic import Field

from batchline.audit.services import Actor
from batchline.execution import monitoring, recording
from batchline.execution.models import ProcessAlarm, Sample
from batchline.web.access import current_user, require

from .production import Refusal, StepOut, _batch, _step_out
from .schemas import Problem

router = Router(tags=["batches"])


def _actor(request: HttpRequest) -> Actor:
    return Actor.of(request.user, via="api")


class SampleIn(Schema):
    source: str = Field(max_length=200, description="the container's label or the unit's tag, as scanned")
    quantity: str = Field(max_length=40, description="the quantity taken, in the recipe's unit, as typed")
    position: str = Field(
        default="", max_length=200, description="one of the recipe's positions, if it lists any"
    )


class SampleOut(Schema):
    code: str
    step: str
    material_code: str
    material_name: str
    source: str
    lot: str
    position: str
    quantity: Decimal
    unit: str
    test: str
    method: str
    taken_by: str
    taken_at: Any


def _sample_out(s: Sample) -> dict[str, Any]:
    return {
        "code": s.code,
        "step": s.step.key,
        "material_code": s.material_code,
        "material_name": s.material_name,
        "source": s.source,
        "lot": s.lot,
        "position": s.position,
        "quantity": s.quantity,
        "unit": s.unit,
        "test": s.test,
        "method": s.method,
        "taken_by": s.taken_by.username,
        "taken_at": s.taken_at,
    }


@router.post("/{number}/steps/{key}/samples", response={201: SampleOut, 403: Problem, 409: Refusal})
def step_sample(request: HttpRequest, number: str, key: str, payload: SampleIn) -> Any:
    """Take one sample on a sampling step (IPC-01): a record with its own code; print its label next."""
    require(request.user, "execution.execute_batch")
    sample = recording.step_sample(
        actor=_actor(request),
        user=current_user(request),
        batch=_batch(number),
        step_key=key,
        source=payload.source,
        quantity=payload.quantity,
        position=payload.position,
    )
    return Status(201, _sample_out(Sample.objects.select_related("step", "taken_by").get(pk=sample.pk)))


class OutputIn(Schema):
    quantity: str = Field(max_length=40, description="what this container holds, in the step's unit")


class OutputOut(Schema):
    container: str
    lot: str
    quantity: Decimal
    unit: str


@router.post("/{number}/steps/{key}/output", response={201: OutputOut, 403: Problem, 409: Refusal})
def step_output(request: HttpRequest, number: str, key: str, payload: OutputIn) -> Any:
    """Record one container of output on a produce step (GEN-01); print its label next."""
    require(request.user, "execution.execute_batch")
    c = recording.step_produce(
        actor=_actor(request),
        user=current_user(request),
        batch=_batch(number),
        step_key=key,
        quantity=payload.quantity,
    )
    return Status(201, {"container": c.code, "lot": c.lot.number, "quantity": c.quantity, "unit": c.unit})


class IssueIn(Schema):
    quantity: str = Field(max_length=20, description="labels issued, a whole number")


class ReconcileIn(Schema):
    applied: str = Field(max_length=20)
    destroyed: str = Field(max_length=20)
    returned: str = Field(max_length=20)


class ExamineIn(Schema):
    results: list[Literal["pass", "fail"]] = Field(
        max_length=20, description="one per examination item, in order"
    )
    units: str = Field(max_length=20, description="labelled units examined")
    comment: str = Field(
        default="", max_length=2000, description="what was found; required for a failed item"
    )


@router.post("/{number}/steps/{key}/labels/issue", response={200: StepOut, 403: Problem, 409: Refusal})
def labels_issue(request: HttpRequest, number: str, key: str, payload: IssueIn) -> Any:
    """Issue labels to a labelling step: content from the records, a specimen kept (211.125, 211.130)."""
    require(request.user, "execution.execute_batch")
    batch = _batch(number)
    recording.labels_issue(
        actor=_actor(request),
        user=current_user(request),
        batch=batch,
        step_key=key,
        quantity=payload.quantity,
    )
    return _step_out(batch, key)


@router.post("/{number}/steps/{key}/labels/reconcile", response={200: StepOut, 403: Problem, 409: Refusal})
def labels_reconcile(request: HttpRequest, number: str, key: str, payload: ReconcileIn) -> Any:
    """Issued = applied + destroyed + returned, within the recipe's limit (LBL-03)."""
    require(request.user, "execution.execute_batch")
    batch = _batch(number)
    recording.labels_reconcile(
        actor=_actor(request),
        user=current_user(request),
        batch=batch,
        step_key=key,
        applied=payload.applied,
        destroyed=payload.destroyed,
        returned=payload.returned,
    )
    return _step_out(batch, key)


@router.post("/{number}/steps/{key}/labels/examine", response={200: StepOut, 403: Problem, 409: Refusal})
def labels_examine(request: HttpRequest, number: str, key: str, payload: ExamineIn) -> Any:
    """The examination of the packaged and labelled units, item by item (211.134)."""
    require(request.user, "execution.execute_batch")
    batch = _batch(number)
    recording.labels_examine(
        actor=_actor(request),
        user=current_user(request),
        batch=batch,
        step_key=key,
        results=[r == "pass" for r in payload.results],
        units=payload.units,
        comment=payload.comment,
    )
    return _step_out(batch, key)


class ReprintIn(Schema):
    reason: str = Field(default="", max_length=500, description="required for a reprint")


def _pdf(content: bytes, name: str) -> HttpResponse:
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{name}.pdf"'
    return response


@router.post("/{number}/samples/{code}/label", response={200: None, 403: Problem, 409: Refusal, 422: Problem})
def sample_label(request: HttpRequest, number: str, code: str, payload: ReprintIn) -> Any:
    """A sample's label as PDF; the print is logged (LBL-02)."""
    require(request.user, "execution.execute_batch")
    content = recording.sample_label_print(
        actor=_actor(request), batch=_batch(number), code=code, reason=payload.reason
    )
    return _pdf(content, code)


@router.post(
    "/{number}/dispensed/{code}/label", response={200: None, 403: Problem, 409: Refusal, 422: Problem}
)
def dispensed_label(request: HttpRequest, number: str, code: str, payload: ReprintIn) -> Any:
    """The label of a container weighed out for this batch as PDF (211.101(b)(4)); the print is logged."""
    require(request.user, "execution.execute_batch")
    content = recording.dispensed_label_print(
        actor=_actor(request), batch=_batch(number), code=code, reason=payload.reason
    )
    return _pdf(content, code)


@router.post("/{number}/output/{code}/label", response={200: None, 403: Problem, 409: Refusal, 422: Problem})
def output_label(request: HttpRequest, number: str, code: str, payload: ReprintIn) -> Any:
    """The label of a container of this batch's output as PDF; the print is logged (LBL-02)."""
    require(request.user, "execution.execute_batch")
    content = recording.output_label_print(
        actor=_actor(request), batch=_batch(number), code=code, reason=payload.reason
    )
    return _pdf(content, code)


class AlarmOut(Schema):
    id: int
    step: str
    name: str = Field(description="the monitored value's name in the recipe")
    label: str
    event: str = Field(description="first value, raised, changed, cleared, signal lost, signal back")
    level: str = Field(description="in range, high, low, high-high or low-low")
    at: Any = Field(description="when it began: the first value of it")
    value: Decimal | None
    extreme: Decimal | None
    limit: Decimal | None
    unit: str
    uncertain: bool
    equipment: str
    tag: str
    exception_code: str
    needs_acknowledgement: bool
    acknowledged_by: str
    acknowledged_at: Any
    comment: str


class AcknowledgeIn(Schema):
    comment: str = Field(max_length=2000, description="what was done about it; kept in the audit trail")


def _alarm_out(a: Any) -> dict[str, Any]:
    return {
        **{f: getattr(a, f) for f in ("id", "name", "label", "event", "level", "at", "value", "extreme")},
        **{f: getattr(a, f) for f in ("limit", "unit", "uncertain", "equipment", "tag", "comment")},
        "step": a.step.key,
        "exception_code": a.exception.code if a.exception_id else "",
        "needs_acknowledgement": a.needs_acknowledgement,
        "acknowledged_by": a.acknowledged_by.username if a.acknowledged_by_id else "",
        "acknowledged_at": a.acknowledged_at,
    }


@router.get("/{number}/steps/{key}/alarms", response=list[AlarmOut])
def step_alarms(request: HttpRequest, number: str, key: str) -> Any:
    """What the judges of the step's process values from the machine said (S95-06), oldest first."""
    require(request.user, "execution.view_batch")
    step = _batch(number).steps.filter(key=key).first()
    if step is None:
        raise Http404(f"No step {key}")
    alarms = ProcessAlarm.objects.filter(step=step).select_related("step", "exception", "acknowledged_by")
    return [_alarm_out(a) for a in alarms]


@router.post(
    "/{number}/steps/{key}/alarms/{alarm_id}/acknowledge",
    response={200: AlarmOut, 403: Problem, 409: Refusal},
)
def step_alarm_acknowledge(
    request: HttpRequest, number: str, key: str, alarm_id: int, payload: AcknowledgeIn
) -> Any:
    """Acknowledge a process alarm, saying what was done (audited); the step completes once all are."""
    require(request.user, "execution.acknowledge_alarm")
    step = _batch(number).steps.filter(key=key).first()
    if step is None:
        raise Http404(f"No step {key}")
    alarm = monitoring.alarm_acknowledge(
        actor=_actor(request), alarm_id=alarm_id, comment=payload.comment, step=step
    )
    return _alarm_out(
        ProcessAlarm.objects.select_related("step", "exception", "acknowledged_by").get(pk=alarm.pk)
    )
