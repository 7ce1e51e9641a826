"""Review by exception: the completeness check and the order of the review stages (RBE-03, RBE-06).

Plain data in, plain verdicts out. The quality service reads the batch in a
fixed number of queries, hands the facts here, and signs a stage only when
every check passes (a rejection needs no complete record: a batch can be
rejected because it is incomplete).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .verdict import Reason, Verdict

PRODUCTION_REVIEW = "production_review"
QA_REVIEW = "qa_review"
QP_CERTIFICATION = "qp_certification"
RELEASED = "released"
REJECTED = "rejected"

STAGE_LABELS = {
    PRODUCTION_REVIEW: "production review",
    QA_REVIEW: "QA review",
    QP_CERTIFICATION: "certification by the qualified person",
    RELEASED: "release",
    REJECTED: "rejection",
}


@dataclass(frozen=True)
class StepFacts:
    key: str
    title: str
    state: str
    performer_signs: bool
    verification: bool
    signed: bool  # a "performed" signature is on the step
    verified: bool  # a "verified" signature is on the step


@dataclass(frozen=True)
class BatchFacts:
    number: str
    state: str
    steps: Sequence[StepFacts]
    open_exceptions: Sequence[str]  # "code: message" of each exception without a disposition
    open_deviations: Sequence[str]  # "DEV-…: title (state)" of each linked deviation not closed
    unbalanced: Sequence[str]  # material dispensed for the batch and neither charged nor returned
    limit_failures: Sequence[str] = field(default=())  # yields/reconciliations outside their limits


@dataclass(frozen=True)
class Check:
    code: str
    label: str
    ok: bool
    findings: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code, "label": self.label, "ok": self.ok, "findings": list(self.findings)}


def _check(code: str, label: str, findings: Sequence[str]) -> Check:
    return Check(code, label, not findings, tuple(findings))


def completeness(facts: BatchFacts) -> list[Check]:
    """The checks a batch must pass before it may move into and through review."""
    not_done = [f"{s.title} ({s.state.replace('_', ' ')})" for s in facts.steps if s.state != "done"]
    unsigned = [
        f"{s.title}: performer's signature" for s in facts.steps if s.performer_signs and not s.signed
    ]
    unsigned += [f"{s.title}: verification" for s in facts.steps if s.verification and not s.verified]
    ended = (
        [] if facts.state in ("complete", "in_review") else [f"the batch is {facts.state.replace('_', ' ')}"]
    )
    return [
        _check("STEPS_DONE", "All mandatory steps done", [*ended, *not_done]),
        _check("SIGNATURES", "All required signatures present", unsigned),
        _check("EXCEPTIONS", "All exceptions dispositioned", facts.open_exceptions),
        _check("DEVIATIONS", "Linked deviations closed", facts.open_deviations),
        _check("LIMITS", "Yields and reconciliations within limits", facts.limit_failures),
        _check("GENEALOGY", "Genealogy balanced", facts.unbalanced),
    ]


def next_stage(done: Sequence[str], *, qp_required: bool) -> str | None:
    """The stage to sign next, or None when the batch is dispositioned."""
    if RELEASED in done or REJECTED in done:
        return None
    order = [PRODUCTION_REVIEW, QA_REVIEW, *([QP_CERTIFICATION] if qp_required else []), RELEASED]
    return next(s for s in order if s not in done)


def may_sign(stage: str, done: Sequence[str], checks: Sequence[Check], *, qp_required: bool) -> Verdict:
    """Whether ``stage`` may be signed now: in order, and (except a rejection) on a complete record."""
    expected = next_stage(done, qp_required=qp_required)
    if expected is None:
        return Verdict.of(Reason("ALREADY_DISPOSITIONED", "The batch is released or rejected already."))
    if stage == REJECTED:
        return Verdict()
    if stage not in STAGE_LABELS:
        return Verdict.of(Reason("UNKNOWN_STAGE", f"{stage!r} is not a review stage."))
    if stage != expected:
        return Verdict.of(
            Reason(
                "OUT_OF_ORDER",
                f"The {STAGE_LABELS[expected]} comes first: stages are signed in order "
                f"(production review, QA review{', QP certification' if qp_required else ''}, release).",
            )
        )
    return Verdict.of(
        *(
            Reason(
                f"INCOMPLETE_{c.code}",
                f"{c.label}: no. " + "; ".join(c.findings[:5]) + ("…" if len(c.findings) > 5 else ""),
            )
            for c in checks
            if not c.ok
        )
    )
