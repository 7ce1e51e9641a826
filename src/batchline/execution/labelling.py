"""Labelling: labels issued with their content and specimen, reconciled, and the labelled units examined.

21 CFR 211.125 (labeling issuance: counted, reconciled; a discrepancy outside preset limits
investigated), 211.130 (packaging and labeling operations), 211.134 (examination of the packaged
and labelled product, its results recorded), 211.188(b)(8) and (13) (the batch record holds the
labeling control records with a specimen, and the examination results), LBL-03.

The label's content is drawn from the batch's records, never typed: the product and its code
from the recipe, the batch number, the quantity per container from the recipe's labelling
block, the expiry from the output lot, the storage conditions and GTIN from the product's
material (``labels.product``). The specimen is rendered from that same content as a PNG, kept
with its SHA-256, and shown in the record (the PDF embeds it).

The examination belongs to this step kind rather than to one of its own: what is examined is
whether the units carry *this* step's label (matching its specimen, batch number and expiry
legible, the count right), so the examination is judged against the step's own specimen, and
one performer's signature (and a verifier's, where the recipe asks) covers the issue, the count
and the examination together, as 211.134 and 211.125 are read together at release.
"""

from __future__ import annotations

import base64
import hashlib
from decimal import Decimal
from typing import Any

from django.utils import timezone

from batchline.audit.services import Actor, record_create
from batchline.labels import card
from batchline.labels.container import LabelError
from batchline.labels.product import ProductLabel
from batchline.materials.labels import template_for
from batchline.materials.models import Material
from batchline.materials.selectors import output_lot
from batchline.rules import gates
from batchline.rules import labelling as rules
from batchline.rules.verdict import Reason, Verdict

from .models import Batch, BatchStep, LabelExamination, LabelIssue, LabelReconciliation, StepState
from .raising import exception_raise

MAX_COUNT = 10_000_000


def _running(step: BatchStep) -> Reason | None:
    if step.spec.get("kind") != "labelling":
        return Reason("WRONG_STEP_KIND", f"“{step.title}” issues no labels.")
    if step.state != StepState.RUNNING:
        label = gates.STEP_STATE_LABELS.get(step.state, step.state)
        return Reason("STEP_NOT_RUNNING", f"“{step.title}” is {label}: start it first.")
    return None


def count(raw: Any, what: str) -> tuple[int | None, Reason | None]:
    """A count of labels or units, as typed: a whole number, zero or more."""
    text = str(raw).strip()
    if not text.isdigit() or len(text) > 8 or int(text) > MAX_COUNT:
        return None, Reason("COUNT_REQUIRED", f"{what}: give a whole number of 0 or more, not {text[:20]!r}.")
    return int(text), None


def product_label(batch: Batch, step: BatchStep) -> ProductLabel:
    """The label of this batch's product, from its records (raises LabelError if they cannot make one)."""
    recipe = batch.recipe
    product = recipe.product
    material = Material.objects.filter(code=product.code).first()
    lot = output_lot(batch.number)
    per = step.spec["labelling"]["per_container"]
    return ProductLabel(
        product_code=product.code,
        product_name=product.name,
        batch=batch.number,
        quantity=Decimal(per["quantity"]),
        unit=per["unit"],
        expiry=lot.expires_at if lot else None,
        storage=material.storage if material else "",
        gtin=(material.gtin or None) if material else None,
        zone=timezone.get_current_timezone(),
        template=template_for("product"),
    )


def issue(
    *, actor: Actor, batch: Batch, step: BatchStep, quantity: str, person: int
) -> tuple[Verdict, LabelIssue | None]:
    """Labels issued to the step, with their content and specimen; the caller holds the batch lock."""
    problem = _running(step)
    if problem is None and LabelReconciliation.objects.filter(step=step).exists():
        problem = Reason(
            "LABELS_ALREADY_RECONCILED", "The labels are reconciled: no more can be issued to this step."
        )
    number, bad = count(quantity, "Labels issued")
    if problem or bad:
        return Verdict.of(problem, bad), None
    assert number is not None
    if number == 0:
        return Verdict.of(Reason("COUNT_REQUIRED", "Labels issued: at least one.")), None
    try:
        label = product_label(batch, step)
    except LabelError as exc:
        return Verdict.of(
            Reason("LABELS_NOT_ISSUED", f"The label cannot be made from the records: {exc}")
        ), None
    png = card.render_png(label.card(specimen=True))
    row = record_create(
        LabelIssue(
            step=step,
            quantity=number,
            content=label.content(),
            specimen_png=base64.b64encode(png).decode("ascii"),
            specimen_sha256=hashlib.sha256(png).hexdigest(),
            by_id=person,
            at=timezone.now(),
        ),
        actor=actor,
        reason=f"{number} labels issued for batch {batch.number}",
    )
    return Verdict(), row


def issued(step: BatchStep) -> int:
    return sum(LabelIssue.objects.filter(step=step).values_list("quantity", flat=True))


def reconcile(
    *, actor: Actor, batch: Batch, step: BatchStep, applied: str, destroyed: str, returned: str, person: int
) -> tuple[Verdict, LabelReconciliation | None]:
    """Issued = applied + destroyed + returned, within the recipe's limit; outside it, an exception (LBL-03)."""
    problem = _running(step)
    if problem is None and LabelReconciliation.objects.filter(step=step).exists():
        problem = Reason("LABELS_ALREADY_RECONCILED", f"The labels of “{step.title}” are reconciled already.")
    total = issued(step)
    if problem is None and total == 0:
        problem = Reason("LABELS_NOT_ISSUED", "No labels were issued to this step: issue them first.")
    counts = [
        count(applied, "Labels applied"),
        count(destroyed, "Labels destroyed"),
        count(returned, "Labels returned"),
    ]
    reasons = [r for r in [problem, *(c[1] for c in counts)] if r]
    if reasons:
        return Verdict(tuple(reasons)), None
    a, d, r = (c[0] or 0 for c in counts)
    limits = step.spec["labelling"].get("reconciliation") or {}
    judged = rules.reconcile(
        total,
        a,
        d,
        r,
        absolute=None if limits.get("absolute") is None else Decimal(limits["absolute"]),
        percent=None if limits.get("percent") is None else Decimal(limits["percent"]),
    )
    row = record_create(
        LabelReconciliation(
            step=step,
            issued=total,
            applied=a,
            destroyed=d,
            returned=r,
            difference=judged.difference,
            allowed=judged.allowed,
            within=judged.within,
            by_id=person,
            at=timezone.now(),
        ),
        actor=actor,
    )
    if not judged.within:
        exception_raise(
            batch,
            actor=actor,
            code="LABEL_RECONCILIATION_OUT_OF_LIMITS",
            step=step,
            message=f"Labeling reconciliation of “{step.title}” outside its limit: {judged.text()}. "
            "To be investigated (21 CFR 211.125(c), 211.192).",
        )
    return Verdict(), row


def examine(
    *,
    actor: Actor,
    batch: Batch,
    step: BatchStep,
    results: list[bool | None],
    units: str,
    comment: str,
    person: int,
) -> tuple[Verdict, LabelExamination | None]:
    """The examination's result per item (211.134); a failed item stops the batch until QA decides."""
    problem = _running(step)
    if step.spec.get("kind") != "labelling":  # no examination items to judge the results against
        return Verdict.of(problem), None
    if problem is None and LabelExamination.objects.filter(step=step).exists():
        problem = Reason(
            "LABELS_ALREADY_EXAMINED", f"The labelled units of “{step.title}” are examined already."
        )
    if problem is None and not LabelIssue.objects.filter(step=step).exists():
        problem = Reason("LABELS_NOT_ISSUED", "No labels were issued to this step: issue them first.")
    items = step.spec["labelling"]["examination"]
    reasons = [problem] if problem else []
    if len(results) != len(items) or any(r is None for r in results):
        reasons.append(
            Reason("EXAMINATION_OPEN", "Give the result (pass or fail) of every examination item.")
        )
    wanted = int(step.spec["labelling"].get("examine_units", 1))
    number, bad = count(units, "Units examined")
    if bad:
        reasons.append(bad)
    elif number is not None and number < wanted:
        reasons.append(Reason("COUNT_REQUIRED", f"Examine at least {wanted} labelled units, not {number}."))
    comment = comment.strip()
    failed = [item for item, r in zip(items, results, strict=False) if r is False]
    if failed and not comment:
        reasons.append(Reason("REASON_REQUIRED", "Say what was found for each failed item."))
    if len(comment) > 2000:
        reasons.append(Reason("TOO_LONG", "The examination comment: at most 2000 characters."))
    if reasons:
        return Verdict(tuple(reasons)), None
    row = record_create(
        LabelExamination(
            step=step,
            units_examined=number or 0,
            results=[{"item": item, "passed": bool(r)} for item, r in zip(items, results, strict=True)],
            passed=not failed,
            comment=comment,
            by_id=person,
            at=timezone.now(),
        ),
        actor=actor,
        reason=comment,
    )
    if failed:
        exception_raise(
            batch,
            actor=actor,
            code="LABEL_EXAMINATION_FAILED",
            step=step,
            message=f"Examination of the labelled units failed: {'; '.join(failed)}. {comment}",
        )
    return Verdict(), row


def completion_reasons(step: BatchStep) -> list[Reason]:
    """A labelling step completes with labels issued, reconciled and the labelled units examined."""
    if step.spec.get("kind") != "labelling":
        return []
    if not LabelIssue.objects.filter(step=step).exists():
        return [Reason("LABELS_NOT_ISSUED", f"Issue the labels for “{step.title}” first.")]
    reasons = []
    if not LabelReconciliation.objects.filter(step=step).exists():
        reasons.append(Reason("LABELS_NOT_RECONCILED", "Count the labels applied, destroyed and returned."))
    if not LabelExamination.objects.filter(step=step).exists():
        reasons.append(Reason("LABELS_NOT_EXAMINED", "Record the examination of the labelled units."))
    return reasons


def describe(step: BatchStep) -> dict[str, Any]:
    """What the screen shows of a labelling step (changes only with audited writes: cacheable)."""
    spec = step.spec["labelling"]
    issues = list(LabelIssue.objects.filter(step=step).order_by("id"))
    return {
        "per_container": spec["per_container"],
        "items": spec["examination"],
        "examine_units": spec.get("examine_units", 1),
        "issues": issues,
        "issued": sum(i.quantity for i in issues),
        "content": issues[-1].content if issues else None,
        "reconciliation": LabelReconciliation.objects.filter(step=step).first(),
        "examination": LabelExamination.objects.filter(step=step).first(),
    }
