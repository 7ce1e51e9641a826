"""Refusals of execution actions: the exception type, and the record of a refused attempt kept for QA
(P11-06 "blocked and logged"), written in its own transaction after the action rolled back."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from django.db import transaction

from batchline.audit.services import (
    Actor,
    audit_append,
)
from batchline.rules import exceptions, states
from batchline.rules.verdict import Refused

from . import (
    raising,
    rows,
)
from .models import Batch, BatchState


class ExecutionRefused(Refused):
    """A gate said no. ``verdict.reasons`` say why, in words for the operator."""


refuse = ExecutionRefused.because


def person_of(actor: Actor) -> int:
    if actor.id is None:
        raise refuse("PERSON_REQUIRED", "Batches are executed by people, each under their own name.")
    return actor.id


P = ParamSpec("P")
R = TypeVar("R")


def records_refusal(action: Callable[P, R]) -> Callable[P, R]:
    """A refused step action is rolled back, then its refusal is recorded on its own for QA."""

    @functools.wraps(action)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return action(*args, **kwargs)
        except ExecutionRefused as refused:
            batch, step_key, actor = kwargs["batch"], kwargs.get("step_key"), kwargs["actor"]
            # What was scanned or weighed from, and on which scale: the context QA reads.
            scanned = str(kwargs.get("scan") or kwargs.get("source") or "")
            _record_refusal(batch.pk, step_key, actor, refused, scanned, str(kwargs.get("scale") or ""))  # type: ignore[attr-defined,arg-type]
            raise

    return run


# A batch released or rejected by QA: its record is closed. A refused attempt on it is recorded as a
# security/audit event only (before the decision it is an open exception QA must see in the review).
RECORD_CLOSED = (BatchState.QA_RELEASED, BatchState.REJECTED)


def _record_refusal(
    batch_id: int, step_key: str | None, actor: Actor, refused: ExecutionRefused, scanned: str, scale: str
) -> None:
    """The refused attempt itself, kept for QA (P11-06 "blocked and logged"), in its own transaction.

    It holds the batch's lock like any action on the batch, taken before the audit
    chain's as everywhere else: one lock order, no deadlock.
    """
    with transaction.atomic():
        batch = rows.lock_batch(batch_id)
        if batch is None:
            raise Batch.DoesNotExist(f"no batch #{batch_id}")
        if batch.state in RECORD_CLOSED:
            # Nothing happened to the product: the attempt is a security/audit event on the batch, not
            # an open exception added to a decided record (whose release signature binds its exceptions).
            for reason in refused.verdict.reasons:
                audit_append(
                    actor=actor,
                    action="refused_after_release",
                    record_type="execution.batch",
                    record_id=batch.pk,
                    changes={},
                    reason=f"Refused on batch {batch.number} ({states.LABELS[batch.state]})"
                    + (f", step {step_key}" if step_key else "")
                    + (f", scanned {scanned[:60]}" if scanned else "")
                    + f": {reason.message} [{reason.code}]",
                )
            return
        found = rows.steps_and_roles(batch, [step_key], None).steps if step_key else []
        step = found[0] if found else None
        for reason in refused.verdict.reasons:
            code = f"REFUSED_{reason.code}"
            subject = exceptions.classify(code).subject
            # A dispensing step scans the container and weighs on the scale: a refusal about the
            # equipment there is about the scale; at an equipment step, about the unit scanned.
            equipment = (scale or scanned) if subject == exceptions.EQUIPMENT else ""
            raising.exception_raise(
                batch,
                actor=actor,
                code=code,
                message=f"Refused: {reason.message}",
                step=step,
                material=scanned[:60] if subject == exceptions.MATERIAL else "",
                equipment=equipment[:40],
            )
