"""The step actions of the kinds with records of their own: take a sample, record output, issue,
reconcile and examine labels, and print a sample's or an output container's label.

Each is one transaction under the batch's lock, like a scan or a weighing: the batch must be
running or released and not stopped by a blocking exception, the person must hold the step's
role, the step must be running. A refusal writes nothing but its own record for QA
(``refusals.records_refusal``); an accepted action writes its record with its audit entries,
appended together at the end of the block.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.db import transaction
from django.utils import timezone

from batchline.audit.services import Actor, ReasonRequired, audit_together, record_create
from batchline.equipment.stations import registered_station_only
from batchline.labels import card
from batchline.labels.pdf import render_pdf as render_container_pdf
from batchline.labels.sample import SampleLabel
from batchline.materials import services as stock
from batchline.materials.labels import template_for, template_reference
from batchline.materials.models import Container, LabelPrint
from batchline.rules.verdict import Refused, Verdict

from . import dispensing, labelling, producing, rows, sampling
from .models import Batch, LabelExamination, LabelIssue, LabelReconciliation, Sample, SampleLabelPrint
from .refusals import ExecutionRefused, person_of, records_refusal
from .snapshots import step_open


def _done(verdict: Verdict, found: Any) -> Any:
    if not verdict.allowed or found is None:
        raise ExecutionRefused(verdict)
    return found


@registered_station_only
@records_refusal
def step_sample(
    *, actor: Actor, user: Any, batch: Batch, step_key: str, source: str, quantity: str, position: str = ""
) -> Sample:
    """Take one sample on a sampling step: from the scanned container or the unit the batch uses."""
    with transaction.atomic(), audit_together():
        snap, step = step_open(actor, user, batch, step_key)
        verdict, sample = sampling.take(
            actor=actor,
            batch=snap.batch,
            step=step,
            source=source,
            position=position[:200],
            quantity=quantity,
            person=person_of(actor),
        )
        return _done(verdict, sample)


@registered_station_only
@records_refusal
def step_produce(*, actor: Actor, user: Any, batch: Batch, step_key: str, quantity: str) -> Container:
    """Record one container of the batch's output on a produce step (GEN-01)."""
    with transaction.atomic(), audit_together():
        snap, step = step_open(actor, user, batch, step_key)
        person_of(actor)
        verdict, made = producing.produce(actor=actor, batch=snap.batch, step=step, quantity=quantity)
        return _done(verdict, made)[0]


@registered_station_only
@records_refusal
def labels_issue(*, actor: Actor, user: Any, batch: Batch, step_key: str, quantity: str) -> LabelIssue:
    """Issue labels to a labelling step: their content from the records and a specimen (211.125, 211.130)."""
    with transaction.atomic(), audit_together():
        snap, step = step_open(actor, user, batch, step_key)
        verdict, row = labelling.issue(
            actor=actor, batch=snap.batch, step=step, quantity=quantity, person=person_of(actor)
        )
        return _done(verdict, row)


@registered_station_only
@records_refusal
def labels_reconcile(
    *, actor: Actor, user: Any, batch: Batch, step_key: str, applied: str, destroyed: str, returned: str
) -> LabelReconciliation:
    """Reconcile the labels issued against those applied, destroyed and returned (211.125(c), LBL-03)."""
    with transaction.atomic(), audit_together():
        snap, step = step_open(actor, user, batch, step_key)
        verdict, row = labelling.reconcile(
            actor=actor,
            batch=snap.batch,
            step=step,
            applied=applied,
            destroyed=destroyed,
            returned=returned,
            person=person_of(actor),
        )
        return _done(verdict, row)


@registered_station_only
@records_refusal
def labels_examine(
    *,
    actor: Actor,
    user: Any,
    batch: Batch,
    step_key: str,
    results: list[bool | None],
    units: str,
    comment: str = "",
) -> LabelExamination:
    """Record the examination of the packaged and labelled units, item by item (211.134)."""
    with transaction.atomic(), audit_together():
        snap, step = step_open(actor, user, batch, step_key)
        verdict, row = labelling.examine(
            actor=actor,
            batch=snap.batch,
            step=step,
            results=results,
            units=units,
            comment=comment,
            person=person_of(actor),
        )
        return _done(verdict, row)


def _print_count(reprint: bool, reason: str, what: str) -> None:
    if reprint and not reason.strip():
        raise ReasonRequired(f"The label of {what} was printed before: give the reason to reprint it.")


@registered_station_only
def sample_label_print(*, actor: Actor, batch: Batch, code: str, reason: str = "") -> bytes:
    """Print (or reprint, with a reason) a sample's label, from the sample's record; logged (LBL-02)."""
    person = person_of(actor)
    with transaction.atomic():
        locked = rows.lock_batch(batch.pk)
        sample = (
            Sample.objects.select_related("step__batch", "taken_by")
            .filter(code=code, step__batch_id=batch.pk)
            .first()
        )
        if locked is None or sample is None:
            raise ExecutionRefused.because("NO_SUCH_SAMPLE", f"Batch {batch.number} has no sample {code}.")
        count = SampleLabelPrint.objects.filter(sample=sample).count()
        _print_count(count > 0, reason, f"sample {code}")
        label = SampleLabel(
            code=sample.code,
            batch=locked.number,
            product_name=rows.product_name(locked),
            material=sample.material_name,
            quantity=sample.quantity,
            unit=sample.unit,
            test=sample.test,
            method=sample.method,
            source=sample.source,
            position=sample.position,
            taken_by=sample.taken_by.printed_name,
            taken_at=sample.taken_at,
            print_count=count + 1,
            zone=timezone.get_current_timezone(),
            template=template_for("sample"),
        )
        content = card.render_pdf(label.card(), title=f"Sample label {sample.code}")
        record_create(
            SampleLabelPrint(
                sample=sample,
                reprint=count > 0,
                reason=reason.strip(),
                format="pdf",
                content_sha256=hashlib.sha256(content).hexdigest(),
                template=template_reference(label.template),
                user_id=person,
                at=timezone.now(),
            ),
            actor=actor,
            reason=reason.strip(),
        )
        return content


@registered_station_only
def dispensed_label_print(*, actor: Actor, batch: Batch, code: str, reason: str = "") -> bytes:
    """Print (or reprint, with a reason) the label of a container weighed out for this batch
    (21 CFR 211.101(b)(4), WD-07): material, lot, weight, the batch it is for, who weighed it; logged."""
    person_of(actor)
    container = (
        Container.objects.select_related("lot__material")
        .filter(code=code, dispensed_for=batch.number, source__isnull=False)
        .first()
    )
    if container is None:
        raise ExecutionRefused.because(
            "NO_SUCH_CONTAINER", f"No container {code} was weighed out for batch {batch.number}."
        )
    count = LabelPrint.objects.filter(container=container).count()
    _print_count(count > 0, reason, code)
    label = dispensing.dispensed_label(container, batch, print_count=count + 1)
    content = render_container_pdf(label)
    try:
        stock.label_print_record(
            actor=actor, container=container, label=label, fmt="pdf", content=content, reason=reason
        )
    except Refused as refused:
        raise ExecutionRefused(refused.verdict) from refused
    return content


@registered_station_only
def output_label_print(*, actor: Actor, batch: Batch, code: str, reason: str = "") -> bytes:
    """Print (or reprint, with a reason) the label of a container of this batch's output; logged (LBL-02)."""
    person_of(actor)
    container = (
        Container.objects.select_related("lot__material")
        .filter(code=code, lot__produced_by_batch=batch.number)
        .first()
    )
    if container is None:
        raise ExecutionRefused.because(
            "NO_SUCH_CONTAINER", f"Batch {batch.number} produced no container {code}."
        )
    count = LabelPrint.objects.filter(container=container).count()
    _print_count(count > 0, reason, code)
    label = producing.output_label(container, print_count=count + 1)
    content = render_container_pdf(label)
    try:
        stock.label_print_record(
            actor=actor, container=container, label=label, fmt="pdf", content=content, reason=reason
        )
    except Refused as refused:
        raise ExecutionRefused(refused.verdict) from refused
    return content
