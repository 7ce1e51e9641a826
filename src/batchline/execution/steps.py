"""Step commands: start, scan, dispense, complete and verify a step (P11-06, S88-05, DESIGN invariant 6).

Every action locks the batch row first (``snapshots``), asks ``rules.gates`` and writes nothing when
the verdict refuses, except the record of the refusal (``refusals``)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from batchline.audit.services import (
    Actor,
    audit_together,
    record_update,
)
from batchline.configuration import selectors as configuration
from batchline.equipment import stations
from batchline.equipment.stations import registered_station_only
from batchline.materials import services as stock
from batchline.outbox import events
from batchline.rules import bindings, gates
from batchline.rules.verdict import Reason, Refused, Verdict
from batchline.signatures.models import Meaning
from batchline.signatures.services import VerifiedSigner, signature_apply
from batchline.training.selectors import curriculum_gaps, user_qualified

from . import (
    charging,
    dispensing,
    identify,
    instruments,
    labelling,
    monitoring,
    producing,
    prompts,
    raising,
    sampling,
    steprecords,
    yields,
)
from .entries import calculate, current_values, implausible, parse_entry, write_measured, write_value
from .models import Batch, BatchState, BatchStep, Severity, StepState, StepValue
from .refusals import ExecutionRefused, person_of, records_refusal
from .snapshots import gate_actor, maybe_complete_batch, snapshot, step_of, step_open


@registered_station_only
@records_refusal
def step_start(*, actor: Actor, user: Any, batch: Batch, step_key: str) -> BatchStep:
    """Start a step once its predecessors are complete and the person has its role."""
    with transaction.atomic(), audit_together():  # entries appended at the end: the chain's lock held briefly
        snap = snapshot(batch.pk, step_key, user=user, predecessors=True)
        step = step_of(snap, step_key)
        verdict = gates.may_start(
            snap.views[step_key], snap.views, gate_actor(actor, snap), batch_state=snap.batch.state
        )
        if blocked := raising.blocked_reason(snap.batch):
            verdict = Verdict((blocked, *verdict.reasons))
        now = timezone.now()
        if step.spec.get("qualification"):
            qualified = user_qualified(person_of(actor), step.spec["qualification"], now)
            verdict = Verdict((*verdict.reasons, *qualified.reasons))
        # The curricula of the performer's roles (master data, TRN-01): trained on each, currently.
        verdict = Verdict(
            (*verdict.reasons, *curriculum_gaps(person_of(actor), user.role_names, now).reasons)
        )
        if not verdict.allowed:
            raise ExecutionRefused(verdict)
        record_update(
            step,
            actor=actor,
            values={"state": StepState.RUNNING, "started_at": now, "started_by_id": actor.id},
            action="start",
        )
        if snap.batch.state == BatchState.RELEASED:
            record_update(snap.batch, actor=actor, values={"state": BatchState.RUNNING}, action="start")
            # Manufacture starts now: the output lot's expiry is counted from here.
            stock.output_lot_manufacture_started(actor=actor, batch_number=snap.batch.number, at=now)
            events.publish("batch.started", batch=snap.batch.number, at=now)
        return step


@registered_station_only
@records_refusal
def step_complete(
    *,
    actor: Actor,
    user: Any,
    batch: Batch,
    step_key: str,
    entries: Mapping[str, str | Decimal | int] | None = None,
    checklist: list[bool] | None = None,
    signer: VerifiedSigner | None = None,
    confirm_out_of_specification: bool = False,
) -> BatchStep:
    """Record the step's values, run its calculations, sign, and complete it (or hand it to a verifier).

    Implausible values and a missing signature refuse the whole step and write
    nothing but the refusal; values outside specification are recorded and
    raise exceptions, once ``confirm_out_of_specification`` says the person
    confirmed them (otherwise :class:`prompts.ConfirmationRequired`, nothing
    written and nothing recorded: a question, not a refusal).
    """
    entries = dict(entries or {})
    with transaction.atomic():
        snap = snapshot(batch.pk, step_key, user=user, finishes=True)
        step = step_of(snap, step_key)
        definition = step.definition()
        now = timezone.now()
        reasons: list[Reason] = [blocked] if (blocked := raising.blocked_reason(snap.batch)) else []
        parsed: list[tuple[Mapping[str, Any], str, Decimal | None]] = []
        missing = []
        # Read once, and only when a typed number needs it (a prompt completion costs no statement).
        notation = functools.cache(configuration.notation)
        for inp in definition.get("inputs", []):
            if inp.get("device"):  # read from the machine, never typed here (instruments.completion)
                continue
            raw = entries.get(inp["name"], "")
            if isinstance(raw, str) and not raw.strip():
                if inp.get("required", True):
                    missing.append(inp["label"])
                continue
            text, number, problem = parse_entry(inp, raw, notation)
            if problem is None and number is not None:
                problem = implausible(inp, number, snap.batch.ratio, notation)
            if problem:
                reasons.append(problem)
            parsed.append((inp, text, number))
        items = definition.get("checklist", [])
        if items and (checklist is None or len(checklist) != len(items) or not all(checklist)):
            reasons.append(Reason("CHECKLIST_OPEN", "Confirm every item of the checklist."))
        if signer is not None and signer.user.pk != actor.id:
            reasons.append(Reason("SIGNER_IS_NOT_PERFORMER", "The person completing the step signs it."))
        reasons += charging.completion_reasons(step, snap.batch.ratio)
        reasons += identify.completion_reasons(step)
        reasons += dispensing.completion_reasons(step)
        reasons += monitoring.completion_reasons(step)
        step.batch = snap.batch
        device_reasons, readings = instruments.completion(step, entries, now)
        reasons += device_reasons
        if step.kind in steprecords.KINDS:
            step.batch = snap.batch
            reasons += sampling.completion_reasons(step)
            reasons += producing.completion_reasons(step)
            reasons += labelling.completion_reasons(step)
        verdict = gates.may_complete(
            snap.views[step_key],
            gate_actor(actor, snap),
            batch_state=snap.batch.state,
            now=now,
            missing_inputs=missing,
            signed=signer is not None,
        )
        verdict = Verdict((*verdict.reasons, *reasons))
        if not verdict.allowed:
            raise ExecutionRefused(verdict)
        if not confirm_out_of_specification:  # asked last: only once nothing else stands in the way
            unconfirmed = prompts.out_of_specification(parsed, snap.batch.ratio)
            if not unconfirmed.allowed:
                raise prompts.ConfirmationRequired(unconfirmed)

        # Each change's entry is made as it happens and all are appended, chained in that
        # order, in one call at the end of the block: one round trip instead of one per record.
        with audit_together():
            for inp, text, number in parsed:
                write_value(
                    step,
                    actor=actor,
                    definition=inp,
                    source="entered",
                    text=text,
                    number=number,
                    factor=snap.batch.ratio,
                )
            for inp, found, number in readings:
                instruments.record_reading(step, inp, found, number, actor=actor, factor=snap.batch.ratio)
            measured = write_measured(step, definition, actor=actor, factor=snap.batch.ratio, now=now)
            if definition.get("calculations"):
                values = current_values(snap.batch)
                for calc in definition["calculations"]:
                    values[calc["name"]] = calculate(snap.batch, step, calc, actor=actor, values=values)
            over = gates.overran(snap.views[step_key], now=now)
            late = (
                (now - step.started_at).total_seconds() / 60
                if step.started_at and parsed and over is None
                else 0
            )
            # The configuration is read only for an entry that may be late: its limit is 1 minute at
            # the least (configuration/definitions.py), so a prompt entry costs no statement.
            late_entry_minutes = configuration.current().late_entry_minutes if late > 1 else 0
            if late > 1 and late > late_entry_minutes:
                raising.exception_raise(
                    snap.batch,
                    actor=actor,
                    code="LATE_ENTRY",
                    severity=Severity.LOW,
                    step=step,
                    message=f"Values of “{step.title}” entered {int(late)} min after the step started "
                    f"(more than {late_entry_minutes} min): a late entry.",
                )
            if over is not None and not (measured is not None and measured.in_specification is not None):
                # A duration the step records and judges against its specification raises its own
                # exception when outside it: the same fact is not reported twice.
                raising.exception_raise(
                    snap.batch,
                    actor=actor,
                    code="DURATION_EXCEEDED",
                    severity=Severity.MEDIUM,
                    step=step,
                    message=f"“{step.title}” ran {int(over // 60)} min {int(over % 60)} s longer than its maximum.",
                )
            if "yield" in definition:
                step.batch = snap.batch
                yields.judge_step(step, actor=actor)
            needs_verifier = definition.get("verify") or definition.get("kind") == "verification"
            target = StepState.AWAITING_VERIFICATION if needs_verifier else StepState.DONE
            if definition.get("monitors"):
                monitoring.trends_freeze(actor=actor, step=step, now=now)
            record_update(
                step,
                actor=actor,
                values={"state": target, "completed_at": now, "completed_by_id": actor.id},
                action="complete",
            )
            if signer is not None:
                signature_apply(
                    signer=signer,
                    meaning=Meaning.PERFORMED,
                    record=step,
                    content=step_content(step),
                    actor=actor,
                )
            if target == StepState.DONE:  # a step waiting for its verifier leaves the batch open anyway
                maybe_complete_batch(snap, actor=actor)
        # After the block that appends its entries together: releasing equipment opens savepoints.
        if snap.batch.state == BatchState.COMPLETE:
            identify.release_all(snap.batch, actor=actor)
        return step


@registered_station_only
@records_refusal
def step_scan(*, actor: Actor, user: Any, batch: Batch, step_key: str, scan: str) -> StepValue:
    """A label scanned on a running step: a container on a material charge, a unit on an equipment step.

    Judged at the server's time under the batch lock; refused (nothing consumed
    or claimed, the refusal recorded for QA) when the material, lot, stock,
    equipment state, hold time or calibration is wrong. The entries of an
    accepted scan are appended together at the end: the audit chain's lock,
    which every writer in the plant takes, is held for that append and the
    commit only, not for the whole scan.
    """
    with transaction.atomic(), audit_together():
        snap, step = step_open(actor, user, batch, step_key)
        scanner = identify.scan_equipment if step.kind == "equipment_id" else charging.scan_charge
        try:
            verdict, value = scanner(
                actor=actor, snap_batch=snap.batch, step=step, scan=scan, person=person_of(actor)
            )
        except Refused as refused:  # unknown container, a unit that does not convert: same path
            raise ExecutionRefused(refused.verdict) from refused
        if not verdict.allowed or value is None:
            raise ExecutionRefused(verdict)
        return value


@registered_station_only
@records_refusal
def step_dispense(
    *,
    actor: Actor,
    user: Any,
    batch: Batch,
    step_key: str,
    source: str,
    scale: str,
    manual_weight: str | None = None,
    manual_unit: str = "",
    reason: str = "",
    witness: VerifiedSigner | None = None,
    other_lot_reason: str = "",
) -> StepValue:
    """Weigh material out of the scanned container on the chosen scale (or by hand, with a witness).

    The scale is read first, outside every lock; the reading is judged and
    recorded under the batch's lock. Refused (nothing weighed out, the
    refusal recorded for QA) on any failing gate, an unstable reading, a
    weight outside tolerance or a scale that does not answer.
    """
    if manual_weight is None:
        # Before the scale is asked anything: a reading from a scale the station may not use is no entry.
        elsewhere = stations.instrument_reason(actor, scale)
        if elsewhere is not None:
            raise ExecutionRefused(Verdict.of(elsewhere))
        read, problem = dispensing.read_scale(scale)
        if read is None:
            raise ExecutionRefused(Verdict.of(problem))
        weighing = dataclasses.replace(read, other_lot_reason=other_lot_reason)
    else:
        try:  # read in the site's notation; refused like any entry that is no number
            net = (
                charging.stock.quantity_of(manual_weight, what="weight")
                if manual_weight.strip()
                else Decimal(0)
            )
        except charging.stock.MaterialRefused as exc:
            raise ExecutionRefused(exc.verdict) from exc
        weighing = dispensing.Weighing(
            net=net,
            unit=manual_unit,
            tare=None,
            device="manual",
            manual_reason=reason,
            witness=witness,
            other_lot_reason=other_lot_reason,
            typed=manual_weight,
        )
    with (
        transaction.atomic(),
        audit_together(),
    ):  # as step_scan: the chain lock for the append and commit only
        snap, step = step_open(actor, user, batch, step_key)
        try:
            verdict, value = dispensing.dispense(
                actor=actor,
                batch=snap.batch,
                step=step,
                source=source,
                scale=scale,
                weighing=weighing,
                person=person_of(actor),
            )
        except Refused as refused:
            raise ExecutionRefused(refused.verdict) from refused
        if not verdict.allowed or value is None:
            raise ExecutionRefused(verdict)
        if weighing.device == "manual":
            raising.exception_raise(
                snap.batch,
                actor=actor,
                code="MANUAL_WEIGHT_ENTRY",
                step=step,
                value=value,
                material=source,
                message=f"Weight typed by hand for “{step.title}”: {value.text} {value.unit}. Reason: {reason}",
            )
        return value


def step_content(step: BatchStep) -> dict[str, Any]:
    """What a step signature binds to: the step, every value recorded on it (corrections included) and
    the records of its own (samples, output, labels: ``steprecords``), as ``rules.bindings`` reads them."""
    rows = list(step.values.order_by("id").values_list("id", "name", "text", "unit", "corrects_id", "source"))
    readings = instruments.readings_of(pk for pk, *_rest, source in rows if source == "device")
    values = [
        {
            "id": pk,
            "name": name,
            "text": text,
            "unit": unit,
            "corrects": corrects,
            "reading": readings.get(pk),
        }
        for pk, name, text, unit, corrects, _source in rows
    ]
    records = steprecords.step_records(step) if step.kind in steprecords.KINDS else []
    return bindings.step_content(step.batch.number, step.key, values, records)


@registered_station_only
@records_refusal
def step_verify(*, actor: Actor, user: Any, batch: Batch, step_key: str, signer: VerifiedSigner) -> BatchStep:
    """A different person verifies a completed step with their signature (DV-01)."""
    with transaction.atomic():
        snap = snapshot(batch.pk, step_key, user=user, finishes=True)
        step = step_of(snap, step_key)
        verdict = gates.may_verify(
            snap.views[step_key], gate_actor(actor, snap, user), batch_state=snap.batch.state
        )
        if signer.user.pk != actor.id:
            verdict = Verdict((*verdict.reasons, Reason("SIGNER_IS_NOT_VERIFIER", "The verifier signs.")))
        if not verdict.allowed:
            raise ExecutionRefused(verdict)
        now = timezone.now()
        record_update(
            step,
            actor=actor,
            values={"state": StepState.DONE, "verified_at": now, "verified_by_id": actor.id},
            action="verify",
        )
        signature_apply(
            signer=signer, meaning=Meaning.VERIFIED, record=step, content=step_content(step), actor=actor
        )
        maybe_complete_batch(snap, actor=actor)
        if snap.batch.state == BatchState.COMPLETE:
            identify.release_all(snap.batch, actor=actor)
        return step
