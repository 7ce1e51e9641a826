"""Life-cycles as data: which transition is allowed from which state (S88-05, MBR-01).

Each transition names what it needs (a reason, a signature meaning); the
services enforce it, and an exhaustive test walks every state × command pair.
"""

from __future__ import annotations

from dataclasses import dataclass

from .verdict import Reason, Verdict


@dataclass(frozen=True, slots=True)
class Transition:
    command: str
    source: frozenset[str]
    target: str
    meaning: str | None = None  # signature meaning required, if any
    reason_required: bool = False


def _t(command: str, source: str, target: str, **kw: object) -> Transition:
    return Transition(command, frozenset(source.split()), target, **kw)  # type: ignore[arg-type]


# Master recipe: draft → in review → approved → effective → superseded / retired.
RECIPE = {
    t.command: t
    for t in [
        _t("submit", "draft", "in_review", meaning="performed"),
        _t("return", "in_review", "draft", meaning="reviewed", reason_required=True),
        _t("approve", "in_review", "approved", meaning="approved"),
        _t("make_effective", "approved", "effective", meaning="approved"),
        _t("supersede", "effective", "superseded"),  # by the service, when a newer version takes effect
        _t("retire", "approved effective", "retired", meaning="approved", reason_required=True),
    ]
}

# Batch (ISA-88 procedure states, as the plant speaks of them).
BATCH = {
    t.command: t
    for t in [
        _t("release", "created", "released", meaning="performed"),
        _t("start", "released", "running"),  # by the service, when the first step starts
        _t("hold", "running released", "held", meaning="performed", reason_required=True),
        _t("resume", "held", "running", meaning="performed"),
        _t("complete", "running", "complete"),  # by the service, when the last step is done
        _t("abort", "created released running held", "aborted", meaning="performed", reason_required=True),
    ]
}

# Deviation (211.192): open → under investigation → pending approval → closed, each step signed.
DEVIATION = {
    t.command: t
    for t in [
        _t("investigate", "open", "investigation"),
        _t("submit", "investigation", "pending_approval"),
        _t("return", "pending_approval", "investigation", reason_required=True),
        _t("close", "pending_approval", "closed"),
    ]
}

LABELS = {
    "draft": "draft",
    "in_review": "in review",
    "approved": "approved",
    "effective": "effective",
    "superseded": "superseded",
    "retired": "retired",
    "created": "created",
    "released": "released to the floor",
    "running": "running",
    "held": "held",
    "complete": "complete",
    "aborted": "aborted",
    "qa_released": "released by QA",
    "rejected": "rejected",
    "open": "open",
    "investigation": "under investigation",
    "pending_approval": "pending approval",
    "closed": "closed",
}


def check(table: dict[str, Transition], command: str, state: str, *, what: str) -> Verdict:
    t = table.get(command)
    if t is None:
        return Verdict.of(Reason("UNKNOWN_COMMAND", f"{command!r} is not something a {what} can do."))
    if state not in t.source:
        allowed = " or ".join(sorted(LABELS.get(s, s) for s in t.source))
        return Verdict.of(
            Reason(
                "ILLEGAL_TRANSITION",
                f"The {what} is {LABELS.get(state, state)}: "
                f"'{command.replace('_', ' ')}' is possible only when it is {allowed}.",
            )
        )
    return Verdict()
