"""Laboratory results received from the LIMS: checked, judged, recorded, and acted on (IPC-01, S95-04).

:func:`results_receive` takes the results of one message (the JSON API's one, or every
``TestResult`` of a B2MML ``OperationsTest`` document) all or nothing, in one transaction, under
the lock of each batch they concern (in id order, as every action on a batch takes it first),
with the interface user as the actor of every audit entry:

- a result for a sample Batchline does not know, for another test than the sample's, with a
  value that is not a number, or in a unit that cannot be converted into the unit of the recipe's
  limits, is refused in words and nothing is written (A11-07);
- a result ID received before has no second effect: the same content answers as a duplicate; a
  different content under a known ID is refused (a repeated test is a new result with its own ID);
- each new result becomes a :class:`LabResult`, judged against the sampling step's ``result``
  limits (scaled to the batch); where that step waits and runs, the sample's first result is
  recorded on it as its value too (``execution.sampling.result_fill``);
- outside the specification (or failed by the LIMS itself): a blocking exception on the batch
  (``LAB_OUT_OF_SPECIFICATION``, critical) that stops execution and release until QA decides,
  and for a sample of a material lot (not the batch's own output) the lot is blocked
  (``materials.services.lot_block``); outside the action limits only: ``ACTION_LIMIT``; a result
  the recipe gives no limits for: ``LAB_RESULT_NOT_JUDGED``, for QA to read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from batchline.audit.services import Actor, audit_together, record_create
from batchline.execution import raising, rows, sampling
from batchline.execution.models import Batch, BatchException, BatchStep, Sample, Severity, StepValue
from batchline.execution.scaling import plain
from batchline.materials import services as stock
from batchline.rules.verdict import Reason, Refused, Verdict

from . import judging
from .models import LabResult
from .sample_requests import sample_lot

MAX_RESULTS = 500
VERDICTS = ("", "pass", "fail")


class LimsRefused(Refused):
    """The message is refused as a whole; ``verdict.reasons`` say why, result by result."""


@dataclass(frozen=True)
class Incoming:
    """One result as the LIMS states it, before anything is checked."""

    result_id: str
    sample: str
    test: str
    value: Any  # a Decimal (a JSON number) or the text the LIMS wrote
    unit: str = ""
    tested_at: dt.datetime | None = None
    lims_verdict: str = ""
    comment: str = ""


@dataclass(frozen=True)
class Received:
    result: LabResult
    duplicate: bool  # received before under the same ID: nothing was written this time


@dataclass(frozen=True)
class _Checked:
    incoming: Incoming
    sample: Sample
    number: Decimal
    text: str
    judgement: judging.Judgement


def _sizes(r: Incoming) -> list[Reason]:
    name = r.result_id.strip()[:100] or "without an ID"
    found = []
    for what, value, most in (
        ("its ID", r.result_id, 100),
        ("the sample code", r.sample, 60),
        ("the test", r.test, 200),
        ("the unit", r.unit, 30),
        ("the comment", r.comment, 2000),
    ):
        if len(value.strip()) > most:
            found.append(Reason("TOO_LONG", f"Result {name}: {what} is longer than {most} characters."))
    for what, value in (("an ID", r.result_id), ("a sample code", r.sample), ("a test", r.test)):
        if not value.strip():
            found.append(Reason("VALUE_MISSING", f"Result {name} has no {what}: every result names it."))
    return found


def _check(r: Incoming, samples: dict[str, Sample]) -> tuple[_Checked | None, list[Reason]]:
    reasons = _sizes(r)
    if reasons:
        return None, reasons
    rid = r.result_id.strip()
    sample = samples.get(r.sample.strip())
    if sample is None:
        return None, [
            Reason(
                "UNKNOWN_SAMPLE",
                f"Result {rid} names sample {r.sample.strip()!r}, which Batchline does not know: "
                "check the code on the sample's label.",
            )
        ]
    if r.test.strip().casefold() != sample.test.strip().casefold():
        reasons.append(
            Reason(
                "WRONG_TEST",
                f"Result {rid} is for “{r.test.strip()}”, but sample {sample.code} was taken for “{sample.test}”.",
            )
        )
    if r.lims_verdict.strip().lower() not in VERDICTS:
        reasons.append(
            Reason(
                "UNKNOWN_VERDICT",
                f"Result {rid}: the LIMS's verdict is “pass” or “fail”, not {r.lims_verdict!r}.",
            )
        )
    if r.tested_at is not None and timezone.is_naive(r.tested_at):
        reasons.append(
            Reason(
                "NO_TIME_ZONE", f"Result {rid}: the time it was tested ({r.tested_at}) gives no time zone."
            )
        )
    number, text = judging.read_value(r.value)
    if number is None:
        reasons.append(judging.value_reason(rid, text))
    if reasons or number is None:
        return None, reasons
    judgement, problem = judging.judge(
        result_id=rid,
        test=sample.test,
        definition=judging.definition_of(sample.step.spec),
        ratio=sample.step.batch.ratio,
        value=number,
        unit=r.unit,
        lims_verdict=r.lims_verdict.strip().lower(),
    )
    if problem is not None or judgement is None:
        return None, [problem] if problem else []
    return _Checked(r, sample, number, text, judgement), []


def results_receive(
    *, actor: Actor, results: Sequence[Incoming], via: str, message_sha256: str
) -> list[Received]:
    """Check every result of one message, then record them all in one transaction, or none.

    Raises :class:`LimsRefused` with every reason (nothing written). Locks each batch concerned,
    then the lots an out-of-specification result blocks, then the audit chain.
    """
    if actor.id is None:
        raise LimsRefused.because("PERSON_REQUIRED", "Results are posted by the LIMS's own interface user.")
    if not results:
        raise LimsRefused.because("NO_RESULTS", "The message holds no result.")
    if len(results) > MAX_RESULTS:
        raise LimsRefused.because(
            "TOO_MANY_RESULTS", f"The message holds {len(results)} results: at most {MAX_RESULTS} at once."
        )
    reasons: list[Reason] = []
    ids = [r.result_id.strip() for r in results]
    for rid in sorted({i for i in ids if i and ids.count(i) > 1}):
        reasons.append(Reason("RESULT_ID_TWICE", f"Result {rid} appears more than once in this message."))
    samples = {
        s.code: s
        for s in Sample.objects.filter(code__in={r.sample.strip() for r in results}).select_related(
            "step__batch"
        )
    }
    checked: list[_Checked] = []
    for r in results:
        found, problems = _check(r, samples)
        reasons += problems
        if found is not None:
            checked.append(found)
    if reasons:
        raise LimsRefused(Verdict(tuple(reasons)))
    try:
        with transaction.atomic():
            batches = {}
            for batch_id in sorted({c.sample.step.batch_id for c in checked}):
                batches[batch_id] = rows.lock_batch(batch_id)
            out = []
            with audit_together():
                for c in checked:
                    out.append(_receive(actor, batches[c.sample.step.batch_id], c, via, message_sha256))
            return out
    except IntegrityError as exc:
        # Only a result ID that another message recorded meanwhile, for another batch, comes here.
        raise LimsRefused.because(
            "RESULT_ID_REUSED",
            "A result of this message was recorded meanwhile under the same ID: send it again.",
        ) from exc


def _same(existing: LabResult, c: _Checked) -> bool:
    r = c.incoming
    return (
        existing.sample_id == c.sample.pk
        and existing.test.casefold() == r.test.strip().casefold()
        and existing.value == c.number
        and existing.unit == r.unit.strip()
    )


def _receive(actor: Actor, batch: Batch | None, c: _Checked, via: str, message_sha256: str) -> Received:
    assert batch is not None and actor.id is not None  # a batch is never deleted; checked on entry
    r = c.incoming
    rid = r.result_id.strip()
    existing = LabResult.objects.filter(result_id=rid).first()
    if existing is not None:
        if _same(existing, c):
            return Received(existing, duplicate=True)
        raise LimsRefused.because(
            "RESULT_ID_REUSED",
            f"Result {rid} was received before with other content ({existing.test} of sample "
            f"{existing.sample.code}: {existing.text} {existing.unit}). A changed or repeated result is sent "
            "under a new ID; Batchline keeps both.",
        )
    sample, judged = c.sample, c.judgement
    step = BatchStep.objects.get(pk=sample.step_id)  # its state as it stands under the batch's lock
    step.batch = batch
    shown = f"{c.text} {r.unit.strip()}".rstrip()
    if judged.judged_value is not None and judged.judged_unit != r.unit.strip():
        shown += f" ({plain(judged.judged_value)} {judged.judged_unit})".rstrip()
    what = f"{sample.test} of sample {sample.code}: {shown}"
    value = None
    if sampling.waits_for(step, sample) and judged.judged_value is not None:
        value = sampling.result_fill(
            actor=actor,
            step=step,
            sample=sample,
            number=judged.judged_value,
            in_specification=judged.in_specification,
            within_action=judged.within_action,
            reason=f"laboratory result {rid}",
        )
    exception, blocked = _act(
        actor, batch, step, sample, value, rid, what, r.lims_verdict.strip().lower(), judged
    )
    result = record_create(
        LabResult(
            result_id=rid,
            sample=sample,
            test=r.test.strip(),
            text=c.text,
            value=c.number,
            unit=r.unit.strip(),
            judged_value=judged.judged_value,
            judged_unit=judged.judged_unit,
            specification=judged.specification[:200],
            in_specification=judged.in_specification,
            within_action=judged.within_action,
            lims_verdict=r.lims_verdict.strip().lower(),
            tested_at=r.tested_at,
            comment=r.comment.strip(),
            via=via,
            message_sha256=message_sha256,
            step_value=value,
            exception=exception,
            lot_blocked=blocked,
            received_by_id=actor.id,
            received_at=timezone.now(),
        ),
        actor=actor,
        reason=f"laboratory result {rid}: {what}",
    )
    return Received(result, duplicate=False)


def _act(
    actor: Actor,
    batch: Batch,
    step: BatchStep,
    sample: Sample,
    value: StepValue | None,
    rid: str,
    what: str,
    lims_verdict: str,
    judged: judging.Judgement,
) -> tuple[BatchException | None, str]:
    """The exception a result calls for, and the lot it blocks (its number, or "")."""
    equipment = sample.source[:40] if sample.source_kind == "equipment" else ""
    material = (sample.lot or sample.source)[:60] if sample.source_kind == "container" else ""
    common: dict[str, Any] = {
        "actor": actor,
        "step": step,
        "value": value,
        "material": material,
        "equipment": equipment,
    }
    if judged.in_specification is False:
        lot = sample_lot(sample, batch.number)
        failed = " (the LIMS reports it failed)" if lims_verdict == "fail" else ""
        spec = f"its specification {judged.specification}" if judged.specification else "its criteria"
        message = f"Laboratory result {rid} out of specification: {what} is outside {spec}{failed}."
        blocked = ""
        if lot is not None and stock.lot_block(actor=actor, lot=lot, reason=message):
            blocked = lot.number
            message += f" Lot {lot.number} of {sample.material_code} is blocked."
        exception = raising.exception_raise(batch, code="LAB_OUT_OF_SPECIFICATION", message=message, **common)
        return exception, blocked
    if judged.within_action is False:
        return raising.exception_raise(
            batch,
            code="ACTION_LIMIT",
            severity=Severity.LOW,
            message=f"Laboratory result {rid}: {what} is within its specification {judged.specification} "
            "but outside its action limits.",
            **common,
        ), ""
    if judged.in_specification is None:
        return raising.exception_raise(
            batch,
            code="LAB_RESULT_NOT_JUDGED",
            message=f"Laboratory result {rid}: {what}. The master recipe gives no limits for "
            f"{sample.test}: the result is recorded as the LIMS sent it, for QA to assess.",
            **common,
        ), ""
    return None, ""
