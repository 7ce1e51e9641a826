"""Reads for review by exception: the completeness check and what QA reads, in a fixed number of queries.

Neither grows with the number of recorded values (docs/performance.md): the
checks ask the database for what is missing, not for everything that is there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import CharField
from django.db.models.functions import Cast

from batchline.audit.models import AuditEntry
from batchline.audit.services import record_type_of
from batchline.execution import yields
from batchline.execution.models import Batch, BatchException, BatchStep, ExceptionDisposition, StepValue
from batchline.materials.models import Container
from batchline.rules import exceptions as taxonomy
from batchline.rules import review as rules
from batchline.rules import triage
from batchline.signatures.models import Meaning, Signature

from .models import Deviation, DeviationLink, DeviationState, ReviewStage, Stage


def _step_ids_as_text(batch: Batch) -> Any:
    return BatchStep.objects.filter(batch=batch).annotate(sid=Cast("id", CharField())).values("sid")


@dataclass(frozen=True)
class Reading:
    """One reading of a batch for review: the facts every check and table decides on, and the rows
    they were made from, which the page shows (the same query, so page and checklist agree)."""

    facts: rules.BatchFacts
    exceptions: list[BatchException]  # as in ``facts.exceptions``, with step, user and disposition
    deviations: list[DeviationLink]  # one link per deviation, with the deviation


def read(batch: Batch) -> Reading:
    """Read a batch once for review, in a fixed number of queries whatever its size (docs/performance.md):
    the steps and their signatures, the exceptions with their dispositions, the linked deviations,
    yields and reconciliation (through ``execution.yields``) and what is left in dispensed containers."""
    # Only the two flags of each step's definition, extracted by the database: parsing every
    # step's whole definition was most of the check's time on a 1,000-step batch.
    steps = (
        BatchStep.objects.filter(batch=batch)
        .values_list("id", "key", "title", "state", "kind", "spec__signs", "spec__verify")
        .order_by("seq", "id")
    )
    signed: dict[str, set[str]] = {}
    for record_id, meaning in Signature.objects.filter(
        record_type=record_type_of(BatchStep), record_id__in=_step_ids_as_text(batch)
    ).values_list("record_id", "meaning"):
        signed.setdefault(record_id, set()).add(meaning)
    exceptions = list(
        BatchException.objects.filter(batch=batch)
        .select_related("step", "user", "disposition", "disposition__by")
        .order_by("at", "id")
    )
    links = list(
        DeviationLink.objects.filter(batch_number=batch.number)
        .select_related("deviation")
        .order_by("deviation__number", "id")
    )
    seen: set[int] = set()
    deviations = [lk for lk in links if not (lk.deviation_id in seen or seen.add(lk.deviation_id))]  # type: ignore[func-returns-value]
    unbalanced = [
        f"{code} (lot {lot}) still holds {quantity.normalize():f} {unit}: charge it or return it"
        for code, lot, quantity, unit in Container.objects.filter(dispensed_for=batch.number)
        .exclude(quantity=0)
        .order_by("code")
        .values_list("code", "lot__number", "quantity", "unit")
    ]
    facts = rules.BatchFacts(
        number=batch.number,
        state=batch.state,
        steps=[
            rules.StepFacts(
                key=key,
                title=title,
                state=state,
                performer_signs=bool(signs) or kind == "signature",
                verification=bool(verify) or kind == "verification",
                signed=Meaning.PERFORMED in signed.get(str(pk), ()),
                verified=Meaning.VERIFIED in signed.get(str(pk), ()),
            )
            for pk, key, title, state, kind, signs, verify in steps
        ],
        exceptions=[_exception_facts(e) for e in exceptions],
        deviations=[
            rules.DeviationFacts(
                number=lk.deviation.number,
                title=lk.deviation.title,
                state_label=lk.deviation.get_state_display(),
                closed=lk.deviation.state == DeviationState.CLOSED,
            )
            for lk in deviations
        ],
        yields=yields.batch_yields(batch),
        reconciliation=yields.batch_reconciliation(batch),
        unbalanced=unbalanced,
    )
    return Reading(facts=facts, exceptions=exceptions, deviations=deviations)


def _exception_facts(e: BatchException) -> rules.ExceptionFacts:
    d = getattr(e, "disposition", None)
    return rules.ExceptionFacts(
        id=e.pk,
        code=e.code,
        severity=e.severity,
        message=e.message,
        step=e.step.key if e.step else "",
        material=e.material,
        blocks=e.blocks,
        decision=d.decision if d else "",
        deviation=d.deviation_number if d else "",
    )


def facts(batch: Batch) -> rules.BatchFacts:
    return read(batch).facts


def completeness(batch: Batch) -> list[rules.Check]:
    return rules.completeness(facts(batch))


@dataclass(frozen=True)
class ReviewScreen:
    batch: Batch
    facts: rules.BatchFacts
    checks: list[rules.Check]
    exceptions: list[BatchException]
    groups: list[triage.Group]
    critical_values: list[StepValue]
    corrections: list[StepValue]
    batch_history: list[AuditEntry]
    stages: list[ReviewStage]
    next_stage: str | None
    deviations: list[DeviationLink]

    @property
    def complete(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def open_exceptions(self) -> int:
        return len(self.facts.open_exceptions)

    @property
    def yields(self) -> Sequence[Any]:
        return self.facts.yields

    @property
    def reconciliation(self) -> Sequence[Any]:
        return self.facts.reconciliation

    @property
    def refused_summary(self) -> str:
        return triage.refused_summary(self.groups)


def review_screen(batch: Batch, *, qp_required: bool) -> ReviewScreen:
    """What QA reads instead of the whole record (RBE-02, RBE-04): exceptions grouped in reading order,
    critical values, changes after first entry, the batch's own history, the checklist and the stages
    signed; the checklist and every table from one reading of the batch (:func:`read`)."""
    reading = read(batch)
    # Flagged when recorded, so QA's list of critical values does not parse every step's definition.
    critical_values = list(
        StepValue.objects.filter(step__batch=batch, critical=True)
        .select_related("step", "entered_by")
        .order_by("step__seq", "entered_at", "id")
    )
    corrections = list(
        StepValue.objects.filter(step__batch=batch, corrects__isnull=False)
        .select_related("step", "entered_by", "corrects")
        .order_by("entered_at", "id")
    )
    history = list(
        AuditEntry.objects.filter(record_type=record_type_of(Batch), record_id=str(batch.pk)).order_by("id")
    )
    stages = list(ReviewStage.objects.filter(batch=batch).select_related("by").order_by("at", "id"))
    return ReviewScreen(
        batch=batch,
        facts=reading.facts,
        checks=rules.completeness(reading.facts),
        exceptions=reading.exceptions,
        groups=triage.groups(reading.facts.exceptions),
        critical_values=critical_values,
        corrections=corrections,
        batch_history=history,
        stages=stages,
        next_stage=rules.next_stage([s.stage for s in stages], qp_required=qp_required),
        deviations=reading.deviations,
    )


def exception_type(code: str) -> taxonomy.ExceptionType:
    return taxonomy.classify(code)


def _signatures_of(record_type: str, ids: list[int]) -> dict[str, list[Signature]]:
    found: dict[str, list[Signature]] = {}
    for s in Signature.objects.filter(record_type=record_type, record_id__in=[str(i) for i in ids]).order_by(
        "id"
    ):
        found.setdefault(s.record_id, []).append(s)
    return found


def _manifestations(record_type: str, ids: list[int]) -> dict[str, list[str]]:
    return {k: [s.manifestation() for s in v] for k, v in _signatures_of(record_type, ids).items()}


def record_quality(batch: Batch) -> dict[str, Any]:
    """Quality's part of the executed batch record, as JSON-ready data, in a fixed number of queries:
    each exception's type and disposition, the linked deviations, the review stages signed."""
    dispositions = {
        d.exception_id: d
        for d in ExceptionDisposition.objects.filter(exception__batch=batch).select_related("by")
    }
    disposition_signatures = _signatures_of(
        record_type_of(ExceptionDisposition), [d.pk for d in dispositions.values()]
    )
    exceptions = {}
    for exc_id, code, blocks in BatchException.objects.filter(batch=batch).values_list(
        "id", "code", "blocks"
    ):
        kind = taxonomy.classify(code)
        d = dispositions.get(exc_id)
        exceptions[exc_id] = {
            "category": kind.category,
            "kind": kind.kind,
            "blocks": blocks,
            "disposition": None
            if d is None
            else {
                "id": d.pk,
                "decision": d.decision,
                "comment": d.comment,
                "deviation": d.deviation_number or None,
                "manifestation": "; ".join(
                    x.manifestation() for x in disposition_signatures.get(str(d.pk), [])
                ),
                # The printed name as it stood when the disposition was signed (21 CFR 11.50).
                "by": next(
                    (x.signer_name for x in disposition_signatures.get(str(d.pk), [])), d.by.printed_name
                ),
                "at": d.at.isoformat(),
            },
        }
    deviations = list(
        Deviation.objects.filter(links__batch_number=batch.number)
        .distinct()
        .order_by("number")
        .prefetch_related("links")
    )
    deviation_signatures = _manifestations(record_type_of(Deviation), [d.pk for d in deviations])
    stages = list(ReviewStage.objects.filter(batch=batch).select_related("by").order_by("at", "id"))
    stage_signatures = _signatures_of(record_type_of(ReviewStage), [s.pk for s in stages])
    final = next((s for s in stages if s.stage in (Stage.RELEASED, Stage.REJECTED)), None)

    def number(x: Any) -> str | None:
        return None if x is None else f"{x.normalize():f}"

    return {
        "yields": [
            {
                "operation": y.operation,
                "actual": number(y.actual),
                "theoretical": number(y.theoretical),
                "percent": None if y.percent is None else f"{y.percent.quantize(Decimal('0.01'))}",
                "low": number(y.low),
                "high": number(y.high),
                "unit": y.unit,
                "within": y.within,
            }
            for y in yields.batch_yields(batch)
        ],
        "reconciliation": [
            {
                "lot": r.lot,
                "material": r.material,
                "issued": number(r.issued),
                "consumed": number(r.consumed),
                "returned": number(r.returned),
                "waste": number(r.waste),
                "difference": number(r.difference),
                "unit": r.unit,
                "within": r.within,
            }
            for r in yields.batch_reconciliation(batch)
        ],
        "exceptions": exceptions,
        "deviations": [
            {**d.record_content(), "signatures": deviation_signatures.get(str(d.pk), [])} for d in deviations
        ],
        "review": None
        if not stages
        else {
            "stages": [
                {
                    "id": s.pk,
                    "stage": s.stage,
                    "meaning": Stage(s.stage).label,
                    # The printed name as it stood when the stage was signed (21 CFR 11.50).
                    "signer": next(
                        (x.signer_name for x in stage_signatures.get(str(s.pk), [])), s.by.printed_name
                    ),
                    "at": s.at.isoformat(),
                    "manifestation": "; ".join(
                        x.manifestation() for x in stage_signatures.get(str(s.pk), [])
                    ),
                    "rules_version": s.rules_version,
                    "comment": s.comment,
                    "checklist": s.checklist,
                    "record_sha256": s.record_sha256,
                }
                for s in stages
            ],
            "disposition": final.stage if final else None,
            "disposition_at": final.at.isoformat() if final else None,
        },
    }
