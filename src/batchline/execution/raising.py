"""Exceptions recorded the moment they happen, and the gate they put on their batch.

One place raises them for every step type (services, dispensing, charging), so
each gets its type from the taxonomy (rules/exceptions.py), its context and, for
a blocking one, the count on its batch that stops execution until QA disposes.
"""

from __future__ import annotations

from django.utils import timezone

from batchline.audit.services import Actor, record_create, record_update
from batchline.rules import exceptions
from batchline.rules.verdict import Reason

from .models import Batch, BatchException, BatchStep, StepValue


def exception_raise(
    batch: Batch,
    *,
    actor: Actor,
    code: str,
    message: str,
    severity: str | None = None,
    step: BatchStep | None = None,
    value: StepValue | None = None,
    material: str = "",
    equipment: str = "",
) -> BatchException:
    """Record an exception the moment it happens, typed by the taxonomy (rules/exceptions.py).

    ``severity`` raises the taxonomy's default for this occurrence, never lowers it.
    A blocking one counts on the (locked) batch, so every later action's gate reads
    it with the batch row it already holds.
    """
    kind = exceptions.classify(code)
    found = record_create(
        BatchException(
            batch=batch,
            step=step,
            value=value,
            code=code,
            severity=exceptions.more_severe(severity, kind.severity) if severity else kind.severity,
            blocks=kind.blocks,
            material=material,
            equipment=equipment,
            message=message,
            user_id=actor.id,
            at=timezone.now(),
        ),
        actor=actor,
        reason=message,
    )
    if kind.blocks:
        record_update(
            batch,
            actor=actor,
            values={"blocking_exceptions": batch.blocking_exceptions + 1},
            action="block",
            reason=message,
        )
    return found


def blocked_reason(batch: Batch) -> Reason | None:
    """Execution stops while a blocking exception waits for its disposition (DEV-01)."""
    if not batch.blocking_exceptions:
        return None
    first = (
        BatchException.objects.filter(batch=batch, blocks=True, disposition__isnull=True)
        .select_related("step")
        .first()
    )
    what = f"“{first.message}”" if first else "a blocking exception"
    return Reason(
        "EXCEPTION_BLOCKS",
        f"Batch {batch.number} is stopped: {what} must be dispositioned by QA before work continues.",
    )
