"""The batch record's sections read from the step kinds' own records: sampling, output, labeling.

21 CFR 211.188(b)(7) (output), (8) (labeling control records with a specimen of the labeling
used), (10) (sampling) and (13) (results of the examinations of 211.134). Each section is a list
of this batch's records; an empty list is printed with the reason it is empty (:func:`why_none`),
never as a bare "none". Read in a fixed number of queries whatever the number of steps.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from batchline.execution.models import (
    Batch,
    LabelExamination,
    LabelIssue,
    LabelReconciliation,
    ProcessAlarm,
    ProcessTrend,
    Sample,
    SampleLabelPrint,
)
from batchline.execution.scaling import plain
from batchline.lims import selectors as lims
from batchline.lims.models import LabResult, SampleRequest
from batchline.materials.models import LabelPrint, LedgerEntry, Movement
from batchline.rules import canonical
from batchline.rules.limits import Range

Who = Callable[[Any, Any], dict[str, Any] | None]


def _at(value: Any) -> str | None:
    return None if value is None else str(canonical.normalise(value))


def _n(value: Any) -> str:
    return str(canonical.normalise(value))


def read(
    batch: Batch, kinds: dict[str, str], monitors: dict[str, list[dict[str, Any]]] | None = None
) -> tuple[Callable[[Who], dict[str, Any]], dict[str, set[str]]]:
    """The sections (samples, output, labelling, process values), built once ``who`` can name people
    as they stood (which needs the audit trail, which needs the ids of these records), and those ids.

    ``kinds``: each step's kind by key; a kind the batch does not have costs no query. ``monitors``:
    the process values each step reads from the machine; none cost no query either.
    """
    monitors = {k: m for k, m in (monitors or {}).items() if m}
    alarms = (
        list(
            ProcessAlarm.objects.filter(step__batch=batch)
            .select_related("step", "exception", "acknowledged_by")
            .order_by("at", "id")
        )
        if monitors
        else []
    )
    trends = (
        list(ProcessTrend.objects.filter(step__batch=batch).select_related("step").order_by("id"))
        if monitors
        else []
    )
    has = set(kinds.values())
    samples = (
        list(
            Sample.objects.filter(step__batch=batch)
            .select_related("step", "taken_by")
            .order_by("taken_at", "id")
        )
        if "sampling" in has
        else []
    )
    prints = (
        list(
            SampleLabelPrint.objects.filter(sample__in=[s.pk for s in samples])
            .select_related("user")
            .order_by("at", "id")
        )
        if samples
        else []
    )
    # Each sample's request to the LIMS and the laboratory's results (lims/): none without samples.
    requests, results = lims.of_samples(s.pk for s in samples)
    messages = lims.message_states(r.message_key for r in requests.values())
    # Output may come through the API without a produce step: always asked.
    produced = list(
        LedgerEntry.objects.filter(batch_number=batch.number, kind=Movement.PRODUCE)
        .select_related("container__lot__material", "user")
        .order_by("at", "id")
    )
    output_prints = (
        list(
            LabelPrint.objects.filter(container__in=[e.container_id for e in produced])
            .select_related("container", "user")
            .order_by("at", "id")
        )
        if produced
        else []
    )
    labelling = "labelling" in has
    issues = (
        list(LabelIssue.objects.filter(step__batch=batch).select_related("step", "by").order_by("at", "id"))
        if labelling
        else []
    )
    counts = (
        list(
            LabelReconciliation.objects.filter(step__batch=batch).select_related("step", "by").order_by("at")
        )
        if labelling
        else []
    )
    exams = (
        list(LabelExamination.objects.filter(step__batch=batch).select_related("step", "by").order_by("at"))
        if labelling
        else []
    )
    ids = {
        "execution.sample": {str(s.pk) for s in samples},
        "execution.samplelabelprint": {str(p.pk) for p in prints},
        "lims.samplerequest": {str(r.pk) for r in requests.values()},
        "lims.labresult": {str(r.pk) for found in results.values() for r in found},
        "execution.labelissue": {str(i.pk) for i in issues},
        "execution.labelreconciliation": {str(r.pk) for r in counts},
        "execution.labelexamination": {str(x.pk) for x in exams},
        "materials.container": {str(e.container_id) for e in produced},
        "materials.labelprint": {str(p.pk) for p in output_prints},
        "execution.processalarm": {str(a.pk) for a in alarms},
        "execution.processtrend": {str(t.pk) for t in trends},
    }
    asked = (
        list(batch.steps.filter(kind="sampling").order_by("seq").values_list("key", "spec"))
        if "sampling" in has
        else []
    )
    laboratory = (requests, results, messages)
    return lambda who: {
        **_build(
            who, kinds, samples, prints, produced, output_prints, issues, counts, exams, asked, laboratory
        ),
        "process_values": _process_values(monitors, alarms, trends, who),
    }, ids


def _limits_text(block: dict[str, Any] | None, unit: str) -> str:
    """A monitor's limits as the recipe gave them, for a person to read; "" without any."""
    if not block or (block.get("low") is None and block.get("high") is None):
        return ""
    number = {k: Decimal(str(block[k])) if block.get(k) is not None else None for k in ("low", "high")}
    return Range(number["low"], number["high"]).text(unit)


def _process_values(
    monitors: dict[str, list[dict[str, Any]]],
    alarms: list[ProcessAlarm],
    trends: list[ProcessTrend],
    who: Who,
) -> list[dict[str, Any]]:
    """Each step's process values read from the machine, their limits, and what their judge said
    (execution/monitoring.py): first value, alarms and their acknowledgement, losses of signal."""
    out = []
    for step, found in monitors.items():
        out.append(
            {
                "step": step,
                "monitors": [
                    {
                        "name": m["name"],
                        "label": m["label"],
                        "unit": m["unit"],
                        "critical": bool(m.get("critical")),
                        "equipment_step": m["equipment"],
                        "specification": _limits_text(m.get("specification"), m["unit"]),
                        "action": _limits_text(m.get("action"), m["unit"]),
                        "limits": {
                            kind: [
                                str((m.get(kind) or {}).get(side))
                                if (m.get(kind) or {}).get(side) is not None
                                else None
                                for side in ("low", "high")
                            ]
                            for kind in ("specification", "action")
                        },
                    }
                    for m in found
                ],
                "events": [
                    {
                        "id": a.pk,
                        "name": a.name,
                        "label": a.label,
                        "event": a.event,
                        "level": a.level,
                        "at": _at(a.at),
                        "value": plain(a.value) if a.value is not None else None,
                        "extreme": plain(a.extreme) if a.extreme is not None else None,
                        "limit": plain(a.limit) if a.limit is not None else None,
                        "unit": a.unit,
                        "uncertain": a.uncertain,
                        "equipment": a.equipment,
                        "tag": a.tag,
                        "exception": a.exception_id,
                        "exception_code": a.exception.code if a.exception is not None else "",
                        "needs_acknowledgement": a.needs_acknowledgement,
                        "acknowledged": who(a.acknowledged_by, a.acknowledged_at)
                        if a.acknowledged_by_id
                        else None,
                        "acknowledged_at": _at(a.acknowledged_at),
                        "comment": a.comment,
                    }
                    for a in alarms
                    if a.step.key == step
                ],
                # Frozen when the step completed (execution.monitoring.trends_freeze).
                "trends": [
                    {
                        "id": t.pk,
                        "name": t.name,
                        "label": t.label,
                        "unit": t.unit,
                        "equipment": t.equipment,
                        "start": _at(t.start),
                        "end": _at(t.end),
                        "readings": t.readings,
                        "usable": t.usable,
                        "minimum": plain(t.minimum) if t.minimum is not None else None,
                        "maximum": plain(t.maximum) if t.maximum is not None else None,
                        "buckets": t.buckets,
                    }
                    for t in trends
                    if t.step.key == step
                ],
            }
        )
    return out


def _build(
    who: Who,
    kinds: dict[str, str],
    samples: list[Sample],
    prints: list[SampleLabelPrint],
    produced: list[LedgerEntry],
    output_prints: list[LabelPrint],
    issues: list[LabelIssue],
    counts: list[LabelReconciliation],
    exams: list[LabelExamination],
    asked: list[tuple[str, Any]],
    laboratory: tuple[dict[int, SampleRequest], dict[int, list[LabResult]], dict[str, dict[str, Any]]],
) -> dict[str, Any]:
    requests, results, messages = laboratory
    prints_of: dict[int, list[dict[str, Any]]] = {}
    for p in prints:
        prints_of.setdefault(p.sample_id, []).append(
            {
                "reprint": p.reprint,
                "reason": p.reason,
                "format": p.format,
                "content_sha256": p.content_sha256,
                "by": who(p.user, p.at),
                "at": _at(p.at),
            }
        )
    container_prints: dict[int, list[dict[str, Any]]] = {}
    for op in output_prints:
        container_prints.setdefault(op.container_id, []).append(
            {
                "reprint": op.reprint,
                "reason": op.reason,
                "format": op.format,
                "content_sha256": op.content_sha256,
                "by": who(op.user, op.at),
                "at": _at(op.at),
            }
        )
    return {
        "samples": [
            {
                "id": s.pk,
                "code": s.code,
                "step": s.step.key,
                "material_code": s.material_code,
                "material_name": s.material_name,
                "source_kind": s.source_kind,
                "source": s.source,
                "lot": s.lot,
                "position": s.position,
                "quantity": _n(s.quantity),
                "planned_quantity": _n(s.planned_quantity),
                "unit": s.unit,
                "test": s.test,
                "method": s.method,
                "by": who(s.taken_by, s.taken_at),
                "at": _at(s.taken_at),
                "label_prints": prints_of.get(s.pk, []),
                "request": _request(requests.get(s.pk), messages),
                "results": [_result(r, who) for r in results.get(s.pk, [])],
            }
            for s in samples
        ],
        "samples_asked": [
            {
                "step": key,
                "samples": int((spec.get("sampling") or {}).get("samples", 1)),
                "test": (spec.get("sampling") or {}).get("test", ""),
            }
            for key, spec in asked
        ],
        "output": [
            {
                "id": e.pk,
                "step": e.step_key,
                "container": e.container.code,
                "lot": e.container.lot.number,
                "material_code": e.container.lot.material.code,
                "quantity": _n(e.quantity),
                "unit": e.unit,
                "by": who(e.user, e.at),
                "at": _at(e.at),
                "label_prints": container_prints.get(e.container_id, []),
            }
            for e in produced
        ],
        "labelling": {
            "issued": [
                {
                    "id": i.pk,
                    "step": i.step.key,
                    "quantity": i.quantity,
                    "content": i.content,
                    "specimen_sha256": i.specimen_sha256,
                    "specimen_png": i.specimen_png,
                    "by": who(i.by, i.at),
                    "at": _at(i.at),
                }
                for i in issues
            ],
            "reconciliations": [
                {
                    "id": r.pk,
                    "step": r.step.key,
                    "issued": r.issued,
                    "applied": r.applied,
                    "destroyed": r.destroyed,
                    "returned": r.returned,
                    "difference": r.difference,
                    "allowed": _n(r.allowed),
                    "within": r.within,
                    "by": who(r.by, r.at),
                    "at": _at(r.at),
                }
                for r in counts
            ],
            "examinations": [
                {
                    "id": x.pk,
                    "step": x.step.key,
                    "units_examined": x.units_examined,
                    "results": x.results,
                    "passed": x.passed,
                    "comment": x.comment,
                    "by": who(x.by, x.at),
                    "at": _at(x.at),
                }
                for x in exams
            ],
            "steps": sorted(k for k, kind in kinds.items() if kind == "labelling"),
        },
    }


def _request(r: SampleRequest | None, messages: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The sample's request to the LIMS: when it was made and whether its message reached the LIMS."""
    if r is None:
        return None
    message = messages.get(r.message_key) or {}
    return {
        "id": r.pk,
        "at": _at(r.requested_at),
        "content_sha256": r.content_sha256,
        "message": r.message_key,
        # pending, delivered or failed; "" when the installation has no LIMS to send it to
        "state": message.get("state", ""),
        "delivered_at": _at(message.get("delivered_at")),
    }


def _result(r: LabResult, who: Who) -> dict[str, Any]:
    return {
        "id": r.pk,
        "result_id": r.result_id,
        "test": r.test,
        "text": r.text,
        "unit": r.unit,
        "judged_value": None if r.judged_value is None else plain(r.judged_value),
        "judged_unit": r.judged_unit,
        "specification": r.specification,
        "in_specification": r.in_specification,
        "within_action": r.within_action,
        "lims_verdict": r.lims_verdict,
        "tested_at": _at(r.tested_at),
        "comment": r.comment,
        "filled_step": r.step_value_id is not None,
        "exception": r.exception_id,
        "exception_code": r.exception.code if r.exception is not None else "",
        "lot_blocked": r.lot_blocked,
        "by": who(r.received_by, r.received_at),
        "at": _at(r.received_at),
    }


def why_none(content: dict[str, Any], section: str) -> str:
    """Why a section of this batch's record is empty, in words (it never just says "none")."""
    kinds = {s["kind"] for s in content["steps"]}
    state = content["header"]["state"]
    asks = {"samples": "sampling", "output": "produce", "labelling": "labelling"}[section]
    if asks not in kinds:
        return {
            "samples": "No sampling is part of this batch's master recipe: no samples were taken.",
            "output": "This batch's master recipe has no output step; output recorded through the API shows here.",
            "labelling": "No labelling is part of this batch's master recipe: no labels were issued to it.",
        }[section]
    open_steps = [s["key"] for s in content["steps"] if s["kind"] == asks and s["state"] != "done"]
    if open_steps:
        return f"Not recorded yet: step {', '.join(open_steps)} is not complete (batch {state})."
    return "None recorded."
