"""Quality's writes: exception dispositions, deviations, and the signed stages of a batch's review.

Each is one transaction with its audit entries and its e-signature; a refusal
writes nothing. The order of locks is the batch's row first (as every action on
a batch), then the rows this writes, then the audit chain's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from batchline.audit.models import AuditEntry
from batchline.audit.services import Actor, ReasonRequired, record_create, record_type_of, record_update
from batchline.configuration import selectors as configuration
from batchline.execution import rows
from batchline.execution.models import Batch, BatchException, BatchState, Decision, ExceptionDisposition
from batchline.materials.models import Counter, Lot, LotStatus
from batchline.outbox import events
from batchline.rules import exceptions as taxonomy
from batchline.rules import review as rules
from batchline.rules import states
from batchline.rules.bindings import stage_content
from batchline.rules.verdict import Reason, Refused, Verdict
from batchline.signatures.models import Meaning
from batchline.signatures.services import VerifiedSigner, signature_apply
from batchline.signatures.status import record_sha256

from . import qms, selectors
from .models import Classification, Deviation, DeviationLink, DeviationState, ReviewStage, Stage


class QualityRefused(Refused):
    """Quality said no; ``verdict.reasons`` say why."""


_refuse = QualityRefused.because


def _signed_by_actor(
    actor: Actor, signer: VerifiedSigner | None, permission: str, what: str
) -> VerifiedSigner:
    if signer is None or signer.user.pk != actor.id:
        raise _refuse("SIGNATURE_REQUIRED", f"To {what}, sign with your own user ID and password.")
    if not signer.user.has_perm(permission):
        raise _refuse("NOT_AUTHORISED", f"Your roles do not allow you to {what}.")
    return signer


def _person(actor: Actor) -> int:
    if actor.id is None:
        raise _refuse("PERSON_REQUIRED", "Quality decisions are made by people, each under their own name.")
    return actor.id


def self_approval_allowed() -> bool:
    """The GMP configuration in force (change-controlled, docs/configuration.md) decides."""
    return configuration.current().self_approval


def qp_required() -> bool:
    return configuration.current().qp_certification


# --- exceptions ---------------------------------------------------------------------------------


def exception_content(exc: BatchException) -> dict[str, Any]:
    """What a disposition's signature binds to: the exception as it was recorded."""
    return {
        "batch": exc.batch.number,
        "exception": exc.pk,
        "code": exc.code,
        "severity": exc.severity,
        "message": exc.message,
        "step": exc.step.key if exc.step else None,
        "at": exc.at.isoformat(),
    }


def _named(exc: BatchException) -> str:
    """``#12 (REFUSED_PREDECESSOR_OPEN, 2026-12-06 14:05 UTC)``: an exception as a refusal names it."""
    return f"#{exc.pk} ({exc.code}, {exc.at:%Y-%m-%d %H:%M} UTC)"


def _listed(found: Sequence[BatchException], limit: int = 10) -> str:
    more = len(found) - limit
    return ", ".join(_named(e) for e in found[:limit]) + (f" and {more} more" if more > 0 else "")


def exceptions_disposition(
    *,
    actor: Actor,
    signer: VerifiedSigner | None,
    exception_ids: Sequence[int],
    decision: str,
    comment: str,
    deviation_number: str = "",
    batch: Batch | None = None,
) -> list[ExceptionDisposition]:
    """QA decides on one or more exceptions of one batch under one signing: a disposition each, each
    with its own signature record bound to that exception's content (21 CFR 11.50, 11.70).

    One authentication signs the set (the signer chose them together; 11.200(a)(1)(i)), and
    each disposition stays a record that is judged, printed and archived on its own, so a
    change to one breaks only its own signature. A comment is required (DEV-04); one's own
    exception is not approved by oneself unless the GMP configuration in force allows it
    (self-approval); ``batch``, when given, is the only batch whose exceptions may be chosen.
    Escalating to a deviation links each exception to it (once: an exception the deviation
    was raised from is linked already), and the deviation's closure then governs the
    batch's release. All or nothing: a refusal names every exception that caused it and
    writes nothing. Locks the batch, then the deviation.
    """
    signer = _signed_by_actor(actor, signer, "execution.disposition_exception", "disposition exceptions")
    if not comment.strip():
        raise ReasonRequired("A disposition needs a comment: what was assessed and why it is acceptable.")
    if decision not in Decision.values:
        raise _refuse("UNKNOWN_DECISION", f"{decision!r} is not a disposition.")
    ids = sorted({int(i) for i in exception_ids})
    if not ids:
        raise _refuse("NOTHING_CHOSEN", "Choose the exceptions to disposition.")
    found = list(
        BatchException.objects.filter(pk__in=ids).select_related("batch", "step").order_by("at", "id")
    )
    if missing := sorted(set(ids) - {e.pk for e in found}):
        raise _refuse("NO_SUCH_EXCEPTION", f"No exception {', '.join(f'#{i}' for i in missing[:10])}.")
    if batch is not None and (elsewhere := [e for e in found if e.batch_id != batch.pk]):
        raise QualityRefused(
            Verdict.of(
                *(
                    Reason(
                        "ONE_BATCH",
                        f"Exception {_named(e)} is batch {e.batch.number}'s, not {batch.number}'s: "
                        f"disposition it on {e.batch.number}'s review.",
                    )
                    for e in elsewhere[:10]
                )
            )
        )
    batch_ids = {e.batch_id for e in found}
    if len(batch_ids) != 1:
        raise _refuse(
            "ONE_BATCH",
            "Disposition the exceptions of one batch at a time: these are of batches "
            + ", ".join(sorted({e.batch.number for e in found}))
            + ".",
        )
    with transaction.atomic():
        locked = rows.lock_batch(batch_ids.pop())
        assert locked is not None
        deviation = None
        if decision == Decision.DEVIATION:
            deviation = Deviation.objects.select_for_update().filter(number=deviation_number.strip()).first()
            if deviation is None:
                raise _refuse("NO_SUCH_DEVIATION", f"No deviation {deviation_number!r}: raise it first.")
            if deviation.state == DeviationState.CLOSED:
                # Its closing signature bound what it concerned; a link added now would break it.
                raise _refuse(
                    "DEVIATION_CLOSED", f"{deviation.number} is closed: raise a new deviation for these."
                )
        done = {
            d.exception_id: d
            for d in ExceptionDisposition.objects.filter(exception_id__in=ids).select_related("by")
        }
        refused = [
            Reason(
                "ALREADY_DISPOSITIONED",
                f"Exception {_named(e)} has a disposition already, which stands: "
                f"{done[e.pk].get_decision_display()} ({done[e.pk].by.printed_name}, "
                f"{done[e.pk].at:%Y-%m-%d %H:%M} UTC).",
            )
            for e in found
            if e.pk in done
        ]
        if not self_approval_allowed():
            own = [e for e in found if e.user_id == actor.id]
            if own:
                refused.append(
                    Reason(
                        "SELF_APPROVAL",
                        f"You raised exception{'s' if len(own) > 1 else ''} {_listed(own)}: another person "
                        "dispositions your own exceptions (DEV-04).",
                    )
                )
        if refused:
            raise QualityRefused(Verdict.of(*refused))
        linked = (
            set(
                DeviationLink.objects.filter(deviation=deviation, exception_id__in=ids).values_list(
                    "exception_id", flat=True
                )
            )
            if deviation is not None
            else set()
        )
        now = timezone.now()
        made = []
        for exc in found:
            exc.batch = locked
            made.append(
                record_create(
                    ExceptionDisposition(
                        exception=exc,
                        decision=decision,
                        comment=comment.strip(),
                        deviation_number=deviation.number if deviation else "",
                        by_id=_person(actor),
                        at=now,
                    ),
                    actor=actor,
                    reason=comment,
                )
            )
            if deviation is not None and exc.pk not in linked:
                # The deviation's latest signature did not bind this link: its status names it, with the
                # reason given here (rules.bindings.deviation_statuses).
                record_create(
                    DeviationLink(deviation=deviation, batch_number=locked.number, exception=exc),
                    actor=actor,
                    reason=f"exception escalated: {comment.strip()}",
                )
            signature_apply(
                signer=signer,
                meaning=Meaning.APPROVED,
                record=made[-1],
                content={
                    **exception_content(exc),
                    "decision": decision,
                    "comment": comment.strip(),
                    "deviation": deviation.number if deviation else "",
                },
                actor=actor,
                comment=comment,
            )
        blocking = sum(1 for e in found if e.blocks)
        if blocking:
            record_update(
                locked,
                actor=actor,
                values={"blocking_exceptions": max(0, locked.blocking_exceptions - blocking)},
                action="unblock",
                reason=comment,
            )
    return made


# --- deviations ---------------------------------------------------------------------------------


def _next_deviation_number(year: int) -> str:
    name = f"deviation-{year}"
    counter = Counter.objects.select_for_update().filter(name=name).first()
    if counter is None:
        Counter.objects.get_or_create(name=name)
        counter = Counter.objects.select_for_update().get(name=name)
    counter.value += 1
    counter.save(update_fields=["value"])
    return f"DEV-{year}-{counter.value:04d}"


def deviation_content(dev: Deviation) -> dict[str, Any]:
    return {
        "number": dev.number,
        "title": dev.title,
        "classification": dev.classification,
        "state": dev.state,
        "description": dev.description,
        "immediate_action": dev.immediate_action,
        "investigation": dev.investigation,
        "root_cause": dev.root_cause,
        "impact": dev.impact,
        "capa_reference": dev.capa_reference,
        "links": [
            {
                "batch": lk.batch_number,
                "lot": lk.lot_number,
                "equipment": lk.equipment_code,
                "exception": lk.exception_id,
            }
            for lk in dev.links.order_by("id")
        ],
    }


def deviation_raise(
    *,
    actor: Actor,
    signer: VerifiedSigner | None,
    title: str,
    classification: str,
    description: str,
    immediate_action: str = "",
    batches: Sequence[str] = (),
    lots: Sequence[str] = (),
    equipment: Sequence[str] = (),
    exception_ids: Sequence[int] = (),
) -> Deviation:
    """A numbered deviation, raised directly or from exceptions, linked to what it concerns; signed."""
    signer = _signed_by_actor(actor, signer, "quality.raise_deviation", "raise a deviation")
    problems = []
    if not title.strip():
        problems.append(("TITLE_REQUIRED", "A deviation needs a title."))
    if not description.strip():
        problems.append(("DESCRIPTION_REQUIRED", "Describe what happened."))
    if classification not in Classification.values:
        problems.append(("CLASSIFICATION", "Classify the deviation: minor, major or critical."))
    if problems:
        raise QualityRefused(Verdict.of(*(Reason(c, m) for c, m in problems)))
    excs = list(BatchException.objects.filter(pk__in=exception_ids).select_related("batch"))
    if len(excs) != len(set(exception_ids)):
        raise _refuse("NO_SUCH_EXCEPTION", "One of the chosen exceptions does not exist.")
    batch_numbers = sorted({*(b.strip() for b in batches if b.strip()), *(e.batch.number for e in excs)})
    known = set(Batch.objects.filter(number__in=batch_numbers).values_list("number", flat=True))
    if unknown := [b for b in batch_numbers if b not in known]:
        raise _refuse("NO_SUCH_BATCH", f"No batch {', '.join(unknown)}.")
    with transaction.atomic():
        now = timezone.now()
        dev = record_create(
            Deviation(
                number=_next_deviation_number(now.year),
                title=title.strip()[:200],
                classification=classification,
                description=description.strip(),
                immediate_action=immediate_action.strip(),
                raised_by_id=_person(actor),
                raised_at=now,
            ),
            actor=actor,
        )
        for number in batch_numbers:
            record_create(DeviationLink(deviation=dev, batch_number=number), actor=actor)
        for lot in sorted({x.strip() for x in lots if x.strip()}):
            record_create(DeviationLink(deviation=dev, lot_number=lot[:40]), actor=actor)
        for code in sorted({x.strip() for x in equipment if x.strip()}):
            record_create(DeviationLink(deviation=dev, equipment_code=code[:40]), actor=actor)
        for exc in excs:
            record_create(
                DeviationLink(deviation=dev, batch_number=exc.batch.number, exception=exc), actor=actor
            )
        signed = signature_apply(
            signer=signer, meaning=Meaning.PERFORMED, record=dev, content=deviation_content(dev), actor=actor
        )
        qms.enqueue(dev, "raised", deviation_content(dev), signed.manifestation())
    return dev


# command -> (permission, meaning, fields it takes, fields it needs filled)
_DEVIATION_STEPS: dict[str, tuple[str, str, tuple[str, ...], tuple[str, ...]]] = {
    "investigate": ("quality.investigate_deviation", Meaning.REVIEWED, ("immediate_action",), ()),
    "submit": (
        "quality.investigate_deviation",
        Meaning.PERFORMED,
        ("investigation", "root_cause", "impact", "capa_reference"),
        ("investigation", "root_cause", "impact"),
    ),
    "return": ("quality.approve_deviation", Meaning.REVIEWED, (), ()),
    "close": ("quality.approve_deviation", Meaning.APPROVED, (), ()),
}

DEVIATION_STEP_PERMISSION = {command: rights[0] for command, rights in _DEVIATION_STEPS.items()}

_FIELD_LABELS = {
    "investigation": "the investigation",
    "root_cause": "the root cause",
    "impact": "the impact on the batch",
}


def deviation_transition(
    *,
    actor: Actor,
    signer: VerifiedSigner | None,
    deviation: Deviation,
    command: str,
    fields: dict[str, str] | None = None,
    comment: str = "",
) -> Deviation:
    """Move a deviation one step along open → under investigation → pending approval → closed, signed."""
    verdict = states.check(states.DEVIATION, command, deviation.state, what="deviation")
    if not verdict.allowed:
        raise QualityRefused(verdict)
    permission, meaning, takes, needs = _DEVIATION_STEPS[command]
    signer = _signed_by_actor(actor, signer, permission, f"{command} a deviation")
    t = states.DEVIATION[command]
    if t.reason_required and not comment.strip():
        raise ReasonRequired(f"Give a reason to {command} the deviation.")
    with transaction.atomic():
        locked = Deviation.objects.select_for_update().get(pk=deviation.pk)
        if locked.state != deviation.state:
            raise _refuse("CONCURRENT_CHANGE", f"{locked.number} was changed meanwhile: open it again.")
        values: dict[str, Any] = {"state": t.target}
        for name in takes:
            if fields and fields.get(name, "").strip():  # a blank field leaves the text as it was
                values[name] = fields[name].strip()[:60] if name == "capa_reference" else fields[name].strip()
        if missing := [f for f in needs if not str(values.get(f, getattr(locked, f))).strip()]:
            raise _refuse(
                "INVESTIGATION_INCOMPLETE",
                "Before approval, write " + ", ".join(_FIELD_LABELS[f] for f in missing) + ".",
            )
        if command == "close":
            submitted_by = (
                AuditEntry.objects.filter(
                    record_type=record_type_of(Deviation), record_id=str(locked.pk), action="submit"
                )
                .order_by("-id")
                .values_list("actor_id", flat=True)
                .first()
            )
            if submitted_by == actor.id:
                raise _refuse("SAME_PERSON", "You submitted the investigation: another person approves it.")
            values["closed_at"] = timezone.now()
        record_update(locked, actor=actor, values=values, action=command, reason=comment)
        content = deviation_content(locked)
        signed = signature_apply(
            signer=signer, meaning=meaning, record=locked, content=content, actor=actor, comment=comment
        )
        qms.enqueue(locked, command, content, signed.manifestation())
    return locked


# --- review stages ------------------------------------------------------------------------------

_STAGE_RIGHTS = {
    Stage.PRODUCTION_REVIEW: ("quality.review_production", Meaning.REVIEWED),
    Stage.QA_REVIEW: ("quality.review_quality", Meaning.REVIEWED),
    Stage.QP_CERTIFICATION: ("quality.certify_batch", Meaning.CERTIFIED),
    Stage.RELEASED: ("quality.disposition_batch", Meaning.RELEASED),
    Stage.REJECTED: ("quality.disposition_batch", Meaning.REJECTED),
}

STAGE_PERMISSION = {str(stage): permission for stage, (permission, _) in _STAGE_RIGHTS.items()}
STAGE_MEANING = {str(stage): meaning for stage, (_, meaning) in _STAGE_RIGHTS.items()}

_BATCH_STATE_AFTER = {
    Stage.PRODUCTION_REVIEW: BatchState.IN_REVIEW,
    Stage.RELEASED: BatchState.QA_RELEASED,
    Stage.REJECTED: BatchState.REJECTED,
}


def _output_lot_follows(batch: Batch, lot: Lot | None, stage: str, *, actor: Actor) -> None:
    """The batch's disposition is its output lot's status (RBE-07), under the same signature."""
    if lot is None:
        return  # a batch made before output lots were registered
    status = LotStatus.RELEASED if stage == Stage.RELEASED else LotStatus.REJECTED
    if lot.status != status:
        previous = lot.status
        reason = f"Batch {batch.number} {'released' if stage == Stage.RELEASED else 'rejected'} by QA"
        record_update(lot, actor=actor, values={"status": status}, action="disposition", reason=reason)
        events.publish(
            "lot.status_changed",
            lot_id=lot.pk,
            lot=lot.number,
            status=status,
            previous=previous,
            reason=reason,
            at=timezone.now(),
        )


def review_sign(
    *, actor: Actor, signer: VerifiedSigner | None, batch: Batch, stage: str, comment: str = ""
) -> ReviewStage:
    """Sign the next stage of a batch's review, in order, on a record the completeness check passes.

    Production review moves the batch into review; release and rejection end it
    (QA approver only, RBE-07), and the output lot takes the batch's disposition.
    A person signs one stage of a batch's review at most (production review, QA
    review, certification and release are four people); a rejection may come
    from anyone entitled to it.
    """
    if stage not in _STAGE_RIGHTS:
        raise _refuse("UNKNOWN_STAGE", f"{stage!r} is not a review stage.")
    permission, meaning = _STAGE_RIGHTS[Stage(stage)]
    signer = _signed_by_actor(actor, signer, permission, f"sign the {rules.STAGE_LABELS[stage]}")
    if stage == Stage.REJECTED and not comment.strip():
        raise ReasonRequired("Give the reason the batch is rejected.")
    with transaction.atomic():
        locked = rows.lock_batch(batch.pk)
        assert locked is not None
        # The output lot is locked now, before anything is written: the first write takes the audit
        # chain's lock, and a QA lot action holding the lot would wait for it (a deadlock).
        output = (
            Lot.objects.select_for_update().filter(produced_by_batch=locked.number).first()
            if stage in (Stage.RELEASED, Stage.REJECTED)
            else None
        )
        signed = list(ReviewStage.objects.filter(batch=locked).values_list("stage", "by_id"))
        checks = selectors.completeness(locked)
        verdict = rules.may_sign(stage, [s for s, _ in signed], checks, qp_required=qp_required())
        if stage == Stage.REJECTED and locked.state in (
            BatchState.CREATED,
            BatchState.RELEASED,
            BatchState.RUNNING,
            BatchState.HELD,
        ):
            verdict = Verdict((*verdict.reasons, Reason("NOT_ENDED", "Only an ended batch is rejected.")))
        if stage == Stage.RELEASED and output is not None and output.expires_at is None:
            # 21 CFR 211.137: a released drug product carries an expiration date; none is made up.
            verdict = Verdict(
                (
                    *verdict.reasons,
                    Reason(
                        "OUTPUT_LOT_NO_EXPIRY",
                        f"Lot {output.number} has no expiry date (its product has no shelf life in its "
                        "master data): set it with a signed expiry correction before the release.",
                    ),
                )
            )
        if stage != Stage.REJECTED and any(by == actor.id for _, by in signed):
            verdict = Verdict(
                (
                    *verdict.reasons,
                    Reason(
                        "SAME_REVIEWER",
                        "You signed an earlier stage of this batch: another person signs this one.",
                    ),
                )
            )
        if not verdict.allowed:
            raise QualityRefused(verdict)
        # The complete record this stage approves, hashed before the stage changes anything (11.70).
        approved = record_sha256(locked)
        row = record_create(
            ReviewStage(
                batch=locked,
                stage=stage,
                by_id=_person(actor),
                at=timezone.now(),
                comment=comment.strip(),
                rules_version=taxonomy.VERSION,
                checklist=[c.as_dict() for c in checks],
                record_sha256=approved,
            ),
            actor=actor,
            reason=comment,
        )
        if target := _BATCH_STATE_AFTER.get(Stage(stage)):
            record_update(locked, actor=actor, values={"state": target}, action=stage, reason=comment)
        if stage in (Stage.RELEASED, Stage.REJECTED):
            _output_lot_follows(locked, output, stage, actor=actor)
        signature_apply(
            signer=signer,
            meaning=meaning,
            record=row,
            content=stage_content(
                locked.number,
                {
                    "stage": stage,
                    "checklist": row.checklist,
                    "rules_version": row.rules_version,
                    "comment": row.comment,
                    "record_sha256": approved,
                },
            ),
            actor=actor,
            comment=comment,
        )
        if stage in (Stage.RELEASED, Stage.REJECTED):
            event = "batch.qa_released" if stage == Stage.RELEASED else "batch.rejected"
            events.publish(event, batch=locked.number, at=row.at, comment=row.comment)
    return row
