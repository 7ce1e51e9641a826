"""Gates on starting, completing and verifying a step (P11-06, P11-07, DV-01, IPC-05).

Plain data in, a :class:`Verdict` out, every failing reason in words an
operator understands. The execution service builds the snapshot under a row
lock and writes nothing when a verdict refuses (except the refusal itself).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from .states import LABELS as STATE_WORDS
from .verdict import Reason, Verdict

PENDING, RUNNING, AWAITING_VERIFICATION, DONE = "pending", "running", "awaiting_verification", "done"
STEP_STATE_LABELS = {
    PENDING: "not started",
    RUNNING: "in progress",
    AWAITING_VERIFICATION: "waiting for verification",
    DONE: "complete",
}
BATCH_ACCEPTS_WORK = frozenset({"released", "running"})


@dataclass(frozen=True, slots=True)
class StepView:
    """What the gates need to know about one step of a running batch."""

    key: str
    title: str
    state: str
    role: str
    predecessors: tuple[str, ...] = ()
    min_seconds: int | None = None
    max_seconds: int | None = None
    performer_signs: bool = False
    verification: bool = False
    started_at: dt.datetime | None = None
    performed_by: int | None = None  # who completed (performed) it


@dataclass(frozen=True, slots=True)
class Actor:
    id: int
    roles: frozenset[str] = field(default_factory=frozenset)
    can_verify: bool = False


def _minutes(seconds: float) -> str:
    minutes = int(seconds // 60)
    rest = int(seconds % 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def batch_reason(batch_state: str) -> Reason | None:
    if batch_state in BATCH_ACCEPTS_WORK:
        return None
    labels = {"created": "not released to the floor yet", "held": "on hold"}
    said = labels.get(batch_state) or STATE_WORDS.get(batch_state, batch_state)
    return Reason("BATCH_NOT_ACTIVE", f"The batch is {said}: no step can be worked on.")


def role_reason(step: StepView, actor: Actor) -> Reason | None:
    """Why ``actor`` may not work on ``step`` for want of its role, or None."""
    if not step.role or step.role in actor.roles:
        return None
    return Reason(
        "ROLE_REQUIRED",
        f"Step “{step.title}” is done by the {step.role.replace('_', ' ')} role, which you do not have.",
    )


def may_start(step: StepView, steps: Mapping[str, StepView], actor: Actor, *, batch_state: str) -> Verdict:
    reasons = [batch_reason(batch_state), role_reason(step, actor)]
    if step.state != PENDING:
        reasons.append(
            Reason("STEP_ALREADY_STARTED", f"Step “{step.title}” is already {STEP_STATE_LABELS[step.state]}.")
        )
    open_before = [steps[p] for p in step.predecessors if steps[p].state != DONE]
    if open_before:
        names = ", ".join(f"“{p.title}”" for p in open_before)
        reasons.append(
            Reason(
                "PREDECESSOR_OPEN",
                f"Step “{step.title}” cannot start before {names} {'is' if len(open_before) == 1 else 'are'} complete.",
            )
        )
    return Verdict.of(*reasons)


def may_complete(
    step: StepView,
    actor: Actor,
    *,
    batch_state: str,
    now: dt.datetime,
    missing_inputs: Collection[str] = (),
    signed: bool = False,
) -> Verdict:
    reasons = [batch_reason(batch_state), role_reason(step, actor)]
    if step.state == PENDING:
        reasons.append(Reason("STEP_NOT_STARTED", f"Step “{step.title}” has not been started."))
    elif step.state != RUNNING:
        reasons.append(
            Reason(
                "STEP_ALREADY_COMPLETE", f"Step “{step.title}” is already {STEP_STATE_LABELS[step.state]}."
            )
        )
    if step.state == RUNNING and step.min_seconds and step.started_at is not None:
        elapsed = (now - step.started_at).total_seconds()
        if elapsed < step.min_seconds:
            reasons.append(
                Reason(
                    "TIMER_MINIMUM",
                    f"Step “{step.title}” must run at least {_minutes(step.min_seconds)}; "
                    f"{_minutes(step.min_seconds - elapsed)} to go.",
                )
            )
    if missing_inputs:
        reasons.append(Reason("VALUE_MISSING", "Enter " + ", ".join(missing_inputs) + " first."))
    if step.performer_signs and not signed:
        reasons.append(Reason("SIGNATURE_REQUIRED", f"Step “{step.title}” is completed with your signature."))
    return Verdict.of(*reasons)


def overran(step: StepView, *, now: dt.datetime) -> float | None:
    """Seconds beyond the maximum duration, if the step ran too long (an exception, not a refusal)."""
    if step.max_seconds is None or step.started_at is None:
        return None
    over = (now - step.started_at).total_seconds() - step.max_seconds
    return over if over > 0 else None


def may_verify(step: StepView, actor: Actor, *, batch_state: str) -> Verdict:
    reasons = [batch_reason(batch_state)]
    if step.state != AWAITING_VERIFICATION:
        reasons.append(
            Reason(
                "NOTHING_TO_VERIFY",
                f"Step “{step.title}” is {STEP_STATE_LABELS[step.state]}: there is nothing to verify.",
            )
        )
    if step.performed_by == actor.id:
        reasons.append(
            Reason("VERIFIER_IS_PERFORMER", "You performed this step: a different person must verify it.")
        )
    if not actor.can_verify:
        reasons.append(Reason("NOT_A_VERIFIER", "Your roles do not allow you to verify steps."))
    return Verdict.of(*reasons)
