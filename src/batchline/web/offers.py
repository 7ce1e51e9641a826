"""What the execution screen offers the person looking at it, and why it holds back the rest.

Decided from the same rules the server enforces (``rules/gates.py``,
``rules/states.py``), from what the screen has read; the server decides again
on every action.
"""

from __future__ import annotations

from typing import Any

from batchline.execution import raising, selectors
from batchline.execution.models import Batch
from batchline.rules import gates, states


def offers(
    batch: Batch,
    screen: selectors.BatchScreen,
    current: selectors.StepScreen | None,
    *,
    user_id: int,
    roles: frozenset[str],
    can_control: bool,
) -> dict[str, Any]:
    """What the screen offers this person now, and why it holds back the rest (the server still decides).

    A step that cannot start (its predecessors, the batch's state, a blocking
    exception, a role the person lacks) shows its Start button disabled with
    the reasons; the batch's commands are those its state allows.
    """
    offers: dict[str, Any] = {"start_blocked": [], "work_blocked": []}
    if current is not None and current.step.state in (gates.PENDING, gates.RUNNING):
        views = {
            s.step.key: gates.StepView(key=s.step.key, title=s.step.title, state=s.step.state, role="")
            for s in screen.steps
        }
        me = gates.StepView(
            key=current.step.key,
            title=current.step.title,
            state=current.step.state,
            role=current.definition.get("role", ""),
            predecessors=tuple(current.predecessors),
        )
        actor = gates.Actor(id=user_id, roles=roles)
        blocked = raising.blocked_reason(batch)
        if current.step.state == gates.PENDING:
            verdict = gates.may_start(me, views, actor, batch_state=batch.state)
            offers["start_blocked"] = [r.message for r in (blocked, *verdict.reasons) if r]
        else:
            offers["work_blocked"] = [
                r.message
                for r in (gates.batch_reason(batch.state), blocked, gates.role_reason(me, actor))
                if r
            ]
    if can_control:
        commands: list[dict[str, Any]] = []
        not_now: list[str] = []
        for command in ("release", "hold", "resume", "abort"):
            t = states.BATCH[command]
            allowed = states.check(states.BATCH, command, batch.state, what="batch").allowed
            commands.append(
                {
                    "command": command,
                    "allowed": allowed,
                    "reason_required": t.reason_required,
                    "dialog": f"sign-{command}",
                }
            )
            if not allowed:
                sources = " or ".join(sorted(states.LABELS[x] for x in t.source))
                not_now.append(f"{command} (a batch that is {sources})")
        offers |= {
            "commands": commands,
            "commands_allowed": any(c["allowed"] for c in commands),
            "commands_not_now": "; ".join(not_now) + "." if not_now else "",
            "batch_state_label": states.LABELS.get(batch.state, batch.state),
        }
    return offers
