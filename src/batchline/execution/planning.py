"""A batch changed or cancelled by the planner (the ERP's order) before the floor has begun it.

A process order is the ERP's until the floor works on it: its planner may still
change how much is made, or withdraw it. Both go through here and nowhere else,
and both lock the batch as every action on it does (``rows.lock_batch``):

- :func:`batch_replan` changes the planned quantity of a batch still *created*
  (not yet released to the floor: the supervisor's release is for the quantity
  it showed);
- :func:`batch_cancel` aborts a batch that has not started (*created*, or
  *released* and no step begun) with the planner's reason, raising the abort's
  exception for QA as a supervisor's abort does.

Neither is signed: the planner is a machine interface, and nothing was executed.
The audit entry names the interface's account and the reason names the order.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction

from batchline.audit.services import Actor, ReasonRequired, record_update
from batchline.outbox import events
from batchline.rules import states

from . import identify, raising, rows
from .models import Batch, BatchState, Severity
from .refusals import ExecutionRefused, refuse

# Nothing has been executed: a batch not yet started on the floor.
NOT_STARTED = (BatchState.CREATED, BatchState.RELEASED)


def _locked(batch: Batch) -> Batch:
    locked = rows.lock_batch(batch.pk)
    if locked is None:
        raise Batch.DoesNotExist(f"no batch #{batch.pk}")
    return locked


def batch_replan(*, actor: Actor, batch: Batch, planned_quantity: Decimal, reason: str) -> Batch:
    """The planned quantity of a created batch, checked as at creation; audited with ``reason``."""
    if not reason.strip():
        raise ReasonRequired("Say why the planned quantity changes.")
    if not planned_quantity.is_finite() or planned_quantity <= 0:
        raise refuse("QUANTITY", "The planned quantity must be a number more than zero.")
    if planned_quantity >= Decimal("1e12") or planned_quantity != planned_quantity.quantize(
        Decimal("0.000001")
    ):
        raise refuse(
            "QUANTITY", "The planned quantity has at most 12 digits before and 6 after the decimal mark."
        )
    with transaction.atomic():
        locked = _locked(batch)
        if locked.state != BatchState.CREATED:
            raise refuse(
                "BATCH_NOT_CREATED",
                f"Batch {locked.number} is {states.LABELS[locked.state]}: its planned quantity changes only "
                "before the supervisor releases it to the floor.",
            )
        ratio = planned_quantity / locked.nominal_quantity
        if not Decimal("0.000001") <= ratio <= Decimal("1000000"):
            raise refuse(
                "QUANTITY",
                f"{planned_quantity} {locked.unit} is out of proportion to the recipe's batch size of "
                f"{locked.nominal_quantity.normalize():f} {locked.unit}.",
            )
        record_update(
            locked,
            actor=actor,
            values={"planned_quantity": planned_quantity, "scale": ratio.quantize(Decimal("0.000000001"))},
            action="replan",
            reason=reason,
        )
    return locked


def batch_cancel(*, actor: Actor, batch: Batch, reason: str) -> Batch:
    """Abort a batch that has not started, for the planner's ``reason``; refused once a step has begun."""
    if not reason.strip():
        raise ReasonRequired("Say why the batch is cancelled.")
    with transaction.atomic():
        locked = _locked(batch)
        if locked.state not in NOT_STARTED:
            raise refuse(
                "BATCH_STARTED",
                f"Batch {locked.number} is {states.LABELS[locked.state]}: a batch the floor has begun is not "
                "cancelled by the planner; a supervisor holds or aborts it, with a signature.",
            )
        if locked.steps.exclude(state="pending").exists():
            raise refuse(
                "BATCH_STARTED",
                f"Batch {locked.number} has steps begun: it is not cancelled by the planner; a supervisor "
                "holds or aborts it, with a signature.",
            )
        record_update(
            locked, actor=actor, values={"state": BatchState.ABORTED}, action="abort", reason=reason
        )
        raising.exception_raise(
            locked,
            actor=actor,
            code="ABORT",
            severity=Severity.HIGH,
            message=f"Batch aborted before it started: {reason}",
        )
        identify.release_all(locked, actor=actor)
        # As any abort: whoever must hear of it (the ERP's performance message) hears it in this transaction.
        events.publish("batch.aborted", batch=locked.number, reason=reason)
    return locked


__all__ = ["NOT_STARTED", "ExecutionRefused", "batch_cancel", "batch_replan"]
