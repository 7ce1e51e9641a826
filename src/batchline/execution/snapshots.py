"""What every step action starts with: the batch locked (one action per batch at a time), the step and
the person's roles read, and what no action on a running step may do refused early."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from batchline.audit.services import (
    Actor,
    record_update,
)
from batchline.outbox import events
from batchline.rules import gates
from batchline.rules.verdict import Verdict

from . import (
    raising,
    rows,
    yields,
)
from .models import Batch, BatchState, BatchStep
from .refusals import ExecutionRefused, person_of, refuse

VERIFY_PERMISSION = "signatures.sign_verified"


@dataclass(frozen=True)
class Snapshot:
    batch: Batch
    steps: dict[str, BatchStep]
    views: dict[str, gates.StepView]
    preds: dict[str, list[str]]
    roles: frozenset[str]  # of the person acting
    others_open: bool | None  # whether a step other than ``key`` is not done (None: not asked)


def snapshot(
    batch_id: int, key: str | None = None, *, user: Any, predecessors: bool = False, finishes: bool = False
) -> Snapshot:
    """Lock the batch (one action per batch at a time) and read the step ``key`` and the roles of ``user``.

    With ``predecessors``, the step's predecessors too; with ``finishes`` (an
    action that may make the step done), whether any other step is still open;
    without ``key``, every step. The batch's frozen document is not read: each
    step row carries its own part, so an action costs the same in a recipe of
    30 steps or of 3,000.
    """
    batch = rows.lock_batch(batch_id)
    if batch is None:
        raise Batch.DoesNotExist(f"no batch #{batch_id}")
    found, roles, others_open = rows.steps_and_roles(
        batch, None if key is None else [key], user.pk, others_open=finishes and key is not None
    )
    if predecessors and found and found[0].predecessors:
        found.extend(rows.steps_and_roles(batch, list(found[0].predecessors), user.pk).steps)
    steps = {s.key: s for s in found}
    preds = {k: list(s.predecessors) for k, s in steps.items()}
    views = {}
    for key, step in steps.items():
        d = step.spec
        timer = d.get("timer") or {}
        views[key] = gates.StepView(
            key=key,
            title=step.title,
            state=step.state,
            role=d.get("role", ""),
            predecessors=tuple(preds[key]),
            min_seconds=int(Decimal(timer["min_minutes"]) * 60) if timer.get("min_minutes") else None,
            max_seconds=int(Decimal(timer["max_minutes"]) * 60) if timer.get("max_minutes") else None,
            performer_signs=bool(d.get("signs")) or d.get("kind") == "signature",
            verification=bool(d.get("verify")) or d.get("kind") == "verification",
            started_at=step.started_at,
            performed_by=step.completed_by_id,
        )
    return Snapshot(batch, steps, views, preds, roles, others_open)


def gate_actor(actor: Actor, snap: Snapshot, user: Any = None) -> gates.Actor:
    """The person as the gates see them; whether they may verify is asked (of ``user``) only for verification."""
    return gates.Actor(
        id=person_of(actor),
        roles=snap.roles,
        can_verify=user is not None and user.has_perm(VERIFY_PERMISSION),
    )


def step_of(snap: Snapshot, key: str) -> BatchStep:
    if key not in snap.steps:
        raise refuse("NO_SUCH_STEP", f"Batch {snap.batch.number} has no step {key!r}.")
    return snap.steps[key]


def step_open(actor: Actor, user: Any, batch: Batch, step_key: str) -> tuple[Snapshot, BatchStep]:
    """Lock the batch, read the step, and refuse early what no action on a running step may do now:
    the batch not on the floor, a blocking exception waiting, the person without the step's role.
    For the actions inside a step (a scan, a weighing, a sample, output, labels)."""
    snap = snapshot(batch.pk, step_key, user=user)
    step = step_of(snap, step_key)
    step.batch = snap.batch
    early = Verdict.of(
        gates.batch_reason(snap.batch.state),
        raising.blocked_reason(snap.batch),
        gates.role_reason(snap.views[step_key], gate_actor(actor, snap)),
    )
    if not early.allowed:
        raise ExecutionRefused(early)
    return snap, step


def maybe_complete_batch(snap: Snapshot, *, actor: Actor) -> None:
    """Complete the batch when the step just done was its last open one (read with the snapshot)."""
    batch = snap.batch
    others_open = rows.open_steps_remain(batch) if snap.others_open is None else snap.others_open
    if batch.state == BatchState.RUNNING and not others_open:
        record_update(batch, actor=actor, values={"state": BatchState.COMPLETE}, action="complete")
        yields.judge_batch(batch, actor=actor)
        events.publish("batch.completed", batch=batch.number)
