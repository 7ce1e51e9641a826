"""Review by exception: the completeness check and the order of the review stages (RBE-03, RBE-06).

Plain data in, plain verdicts out. The quality service reads the batch in a
fixed number of queries, hands the facts here, and signs a stage only when
every check passes (a rejection needs no complete record: a batch can be
rejected because it is incomplete).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from . import triage
from .triage import ExceptionFacts
from .verdict import Reason, Verdict
from .yields import Reconciliation, Yield

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
class DeviationFacts:
    number: str
    title: str
    state_label: str  # "Under investigation"
    closed: bool

    def text(self) -> str:
        return f"{self.number}: {self.title} ({self.state_label.lower()})"


# The batch states in which the engine has judged the reconciliation (at the batch's completion).
_RECONCILED = ("complete", "in_review", "qa_released", "rejected")


@dataclass(frozen=True)
class BatchFacts:
    """Everything review by exception decides on, read once per batch (``quality.selectors.facts``).

    The checklist, the page's tables, the worklist's row and the gate of each
    review stage all read one of these, so they cannot tell different stories.
    """

    number: str
    state: str
    steps: Sequence[StepFacts]
    exceptions: Sequence[ExceptionFacts] = ()  # in the order they were recorded
    deviations: Sequence[DeviationFacts] = ()  # each linked deviation once
    yields: Sequence[Yield] = ()
    reconciliation: Sequence[Reconciliation] = ()
    unbalanced: Sequence[str] = ()  # material dispensed for the batch and neither charged nor returned

    @property
    def open_exceptions(self) -> list[ExceptionFacts]:
        return [e for e in self.exceptions if e.open]

    @property
    def open_deviations(self) -> list[DeviationFacts]:
        return [d for d in self.deviations if not d.closed]


# Check code -> what one finding counts, for the one-line summary of a failing check (the worklist).
_COUNTED = {
    "STEPS_DONE": ("step not done", "steps not done"),
    "SIGNATURES": ("signature missing", "signatures missing"),
    "EXCEPTIONS": ("exception open", "exceptions open"),
    "DEVIATIONS": ("deviation open", "deviations open"),
    "LIMITS": ("yield or reconciliation outside limits", "yields or reconciliations outside limits"),
    "GENEALOGY": ("container not accounted for", "containers not accounted for"),
}


@dataclass(frozen=True)
class Check:
    """One line of the checklist. ``findings`` make it fail; ``notes`` are what passed only because QA
    decided on it (a yield outside its limits whose exception was accepted), shown beside the answer."""

    code: str
    label: str
    ok: bool
    findings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    count: int | None = None  # what the findings stand for, when a finding stands for several

    @property
    def answer(self) -> str:
        """``no``, ``yes``, or ``accepted`` (passed on QA's disposition of what is outside the rule)."""
        if not self.ok:
            return "no"
        return "accepted" if self.notes else "yes"

    @property
    def summary(self) -> str:
        """What keeps a failing check open, counted: ``3 exceptions open``; empty when it passes."""
        if self.ok:
            return ""
        findings = list(self.findings)
        prefix = ""
        if self.code == "STEPS_DONE" and findings and findings[0].startswith("the batch is "):
            prefix, findings = findings[0], findings[1:]
            if not findings:
                return prefix
            prefix += "; "
        n = len(findings) if self.count is None else self.count
        one, many = _COUNTED.get(self.code, ("finding", "findings"))
        return f"{prefix}{n} {one if n == 1 else many}"

    def as_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "label": self.label,
            "ok": self.ok,
            "findings": list(self.findings),
            "notes": list(self.notes),
            "count": self.count if self.count is not None else len(self.findings),
        }


def _check(
    code: str, label: str, findings: Sequence[str], notes: Sequence[str] = (), count: int | None = None
) -> Check:
    return Check(code, label, not findings, tuple(findings), tuple(notes), count)


def open_exceptions(facts: BatchFacts) -> list[str]:
    """The open exceptions in reading order (rules/triage.py): each result and process exception on its
    own line, the operator's refused attempts one line per kind, so a dozen slips do not bury the OOS."""
    lines: list[str] = []
    for group in triage.groups(facts.open_exceptions):
        if not group.folded:
            lines.extend(e.text() for e in group.exceptions)
            continue
        codes = sorted({e.code for e in group.exceptions})
        messages = list(dict.fromkeys(e.message for e in group.exceptions))
        others = len(messages) - 1
        lines.append(
            f"{group.label} ({', '.join(codes)}): {messages[0]}"
            + (f" (and {others} other message{'s' if others > 1 else ''})" if others else "")
        )
    return lines


def _latest(
    facts: BatchFacts, code: str, *, step: str | None = None, material: str | None = None
) -> ExceptionFacts | None:
    """The newest exception of ``code`` raised for this yield (its step) or this lot (its material)."""
    found = [
        e
        for e in facts.exceptions
        if e.code == code
        and (step is None or e.step == step)
        and (material is None or e.material == material)
    ]
    return found[-1] if found else None


def _outside(
    text: str, exc: ExceptionFacts | None, findings: list[str], notes: list[str], *, judged: bool
) -> None:
    """A yield or reconciliation outside its limits: open until QA decides on its exception."""
    if exc is None:
        findings.append(
            f"{text}: {'no exception was raised' if judged else 'judged when the batch completes'}"
        )
    elif exc.open:
        findings.append(f"{text}: exception #{exc.id} waits for its disposition")
    elif exc.deviation:
        notes.append(f"{text}: exception #{exc.id} escalated to {exc.deviation}")
    else:
        notes.append(f"{text}: exception #{exc.id} accepted by QA")


def limits(facts: BatchFacts) -> tuple[list[str], list[str]]:
    """Yields and reconciliations: (findings, notes). A yield that cannot be computed, or one outside its
    limits whose exception is missing or open, is a finding; one whose exception QA decided is a note."""
    findings: list[str] = []
    notes: list[str] = []
    for y in facts.yields:
        if y.within is None:
            findings.append(y.text())
        elif y.within is False:
            exc = _latest(facts, "YIELD_OUT_OF_LIMITS", step=y.step)
            _outside(y.text(), exc, findings, notes, judged=True)
    for r in facts.reconciliation:
        if not r.within:
            exc = _latest(facts, "RECONCILIATION_OUT_OF_LIMITS", material=r.lot[:60])
            _outside(f"reconciliation of {r.text()}", exc, findings, notes, judged=facts.state in _RECONCILED)
    return findings, notes


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
    limit_findings, limit_notes = limits(facts)
    return [
        _check("STEPS_DONE", "All mandatory steps done", [*ended, *not_done]),
        _check("SIGNATURES", "All required signatures present", unsigned),
        _check(
            "EXCEPTIONS",
            "All exceptions dispositioned",
            open_exceptions(facts),
            count=len(facts.open_exceptions),
        ),
        _check("DEVIATIONS", "Linked deviations closed", [d.text() for d in facts.open_deviations]),
        _check("LIMITS", "Yields and reconciliations within limits", limit_findings, limit_notes),
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
