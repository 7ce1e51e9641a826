"""Correcting a recorded value: a new entry pointing at the original, with reason and signature (DI-05)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from batchline.audit.services import (
    Actor,
    ReasonRequired,
    record_update,
)
from batchline.configuration import selectors as configuration
from batchline.equipment.stations import registered_station_only
from batchline.rules import gates, states
from batchline.rules.verdict import Reason, Verdict
from batchline.signatures.models import Meaning
from batchline.signatures.services import VerifiedSigner, signature_apply

from . import (
    instruments,
    prompts,
    raising,
    yields,
)
from .entries import current_values, implausible, parse_entry, recalculate, said, steps_using, write_value
from .models import Batch, Severity, StepState, StepValue
from .refusals import ExecutionRefused, records_refusal
from .snapshots import gate_actor, snapshot, step_of


@registered_station_only
@records_refusal
def value_correct(
    *,
    actor: Actor,
    user: Any,
    batch: Batch,
    step_key: str,
    name: str,
    text: str,
    reason: str,
    signer: VerifiedSigner,
    confirm_out_of_specification: bool = False,
    witness: VerifiedSigner | None = None,
) -> StepValue:
    """Correct a recorded value: a new entry that points at the original, with reason and signature (DI-05).

    A correction to a value outside its specification is recorded only once confirmed, as
    at completion (:mod:`prompts`).

    The original stays; calculations that used the value are recalculated as
    corrections of their own. A step that was verified goes back to waiting
    for verification: what the verifier saw has changed. Raises an exception
    for review; a refused correction is recorded like any refused action.
    """
    if not reason.strip():
        raise ReasonRequired("Say why the value is corrected.")
    with transaction.atomic():
        snap = snapshot(batch.pk, user=user)
        step = step_of(snap, step_key)
        reasons = []
        if snap.batch.state not in gates.BATCH_ACCEPTS_WORK:
            reasons.append(
                Reason(
                    "BATCH_NOT_ACTIVE",
                    f"The batch is {states.LABELS[snap.batch.state]}: values can no longer be corrected.",
                )
            )
        missing_role = gates.role_reason(snap.views[step_key], gate_actor(actor, snap))
        if missing_role:
            reasons.append(missing_role)
        if signer.user.pk != actor.id:
            reasons.append(
                Reason("SIGNER_IS_NOT_CORRECTOR", "The person correcting the value signs the correction.")
            )
        definition = next((i for i in step.definition().get("inputs", []) if i["name"] == name), None)
        values = current_values(snap.batch)
        original = values.get(name)
        if definition is None or original is None or original.step_id != step.pk:
            reasons.append(
                Reason("NO_SUCH_VALUE", f"Step “{step.title}” has no recorded value {name!r} to correct.")
            )
        if definition is not None and definition.get("device"):
            # Typed in place of the machine's reading: a second person confirms it (instruments).
            reasons += instruments.witness_reasons(witness, signer.user.pk, reason, definition["label"])
        if reasons:
            raise ExecutionRefused(Verdict(tuple(reasons)))
        assert definition is not None and original is not None
        new_text, number, problem = parse_entry(definition, text, configuration.notation)
        if problem is None and number is not None:
            problem = implausible(definition, number, snap.batch.ratio, configuration.notation)
        if problem is not None:
            raise ExecutionRefused(Verdict.of(problem))
        if not confirm_out_of_specification:
            unconfirmed = prompts.out_of_specification([(definition, new_text, number)], snap.batch.ratio)
            if not unconfirmed.allowed:
                raise prompts.ConfirmationRequired(unconfirmed)
        corrected = write_value(
            step,
            actor=actor,
            definition=definition,
            source="manual" if definition.get("device") else "entered",
            text=new_text,
            number=number,
            factor=snap.batch.ratio,
            corrects=original,
            reason=reason,
        )
        values[name] = corrected
        raising.exception_raise(
            snap.batch,
            actor=actor,
            code="CORRECTION",
            severity=Severity.MEDIUM,
            step=step,
            value=corrected,
            message=f"{definition['label']} corrected from {said(original.text, original.number)} to "
            f"{said(new_text, number)}: {reason}",
        )
        recalculate(
            snap, values, actor=actor, changed=name, reason=f"recalculated: {definition['label']} corrected"
        )
        for affected in {step.key} | steps_using(snap, name):
            s = snap.steps[affected]
            if "yield" in s.spec:  # the operation's output changed: its yield is judged again
                s.batch = snap.batch
                yields.judge_step(s, actor=actor)
            if s.state == StepState.DONE and s.verified_at is not None:
                record_update(
                    s,
                    actor=actor,
                    values={
                        "state": StepState.AWAITING_VERIFICATION,
                        "verified_at": None,
                        "verified_by_id": None,
                    },
                    action="verification_void",
                    reason=f"{definition['label']} corrected after verification",
                )
                raising.exception_raise(
                    snap.batch,
                    actor=actor,
                    code="VERIFICATION_VOID",
                    severity=Severity.MEDIUM,
                    step=s,
                    message=f"“{s.title}” must be verified again: {definition['label']} was corrected after its verification.",
                )
        if definition.get("device"):
            assert witness is not None
            instruments.witness_sign(corrected, witness, actor=actor, reason=reason)
        signature_apply(
            signer=signer,
            meaning=Meaning.PERFORMED,
            record=corrected,
            content={
                "value": corrected.pk,
                "name": name,
                "text": new_text,
                "corrects": original.pk,
                "reason": reason,
            },
            actor=actor,
            comment=reason,
        )
        return corrected
