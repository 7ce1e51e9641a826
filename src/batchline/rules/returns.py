"""May what is left in a container dispensed for a batch leave it other than by consumption? (WD-12, YLD-03)

A container weighed out for a batch and not charged to the end holds a
remainder. It goes back to stock (in a new labelled container of the same
lot) or to waste, each a movement of its own, so that the batch's component
reconciliation (issued − consumed − returned − waste) accounts for it.

Either is allowed while the batch runs, once it is complete and after an
abort (an aborted batch's material has to go somewhere), and only until its
production review is signed: from then on the reviewers' signatures bind the
record as it stood, and a batch released or rejected by QA has a closed record.
Plain data in, a verdict with every failing reason out; the services lock the
batch and the container, read them and ask this.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .verdict import Reason, Verdict

RETURN, WASTE = "return", "waste"
OPEN_STATES = frozenset({"running", "complete", "aborted"})
CLOSED_STATES = {
    "in_review": "its production review is signed: the record the reviewers approved is closed",
    "qa_released": "it is released by QA: its record is closed",
    "rejected": "it is rejected by QA: its record is closed",
}
NOT_YET = {
    "created": "it is not released to the floor yet",
    "released": "it has not started",
    "held": "it is held: resume it first",
}


@dataclass(frozen=True, slots=True)
class Remainder:
    """A container as the ledger has it: which batch it was weighed out for and what it holds."""

    container: str
    dispensed_for: str | None
    holds: Decimal
    unit: str


def _n(value: Decimal) -> str:
    return f"{value.normalize():f}"


def may_move(
    action: str,
    *,
    batch_number: str,
    batch_state: str,
    remainder: Remainder,
    quantity: Decimal | None,
    reason: str = "",
    location: str = "",
) -> Verdict:
    """Whether ``quantity`` (None: all of it) may leave ``remainder`` by ``action`` (return or waste) now."""
    c, unit = remainder.container, remainder.unit
    if remainder.dispensed_for != batch_number:
        return Verdict.of(
            Reason(
                "NOT_DISPENSED_FOR_BATCH",
                f"Container {c} was not weighed out for batch {batch_number}: only what was dispensed "
                "for this batch is returned or wasted from its screen.",
            )
        )
    reasons = []
    if batch_state in CLOSED_STATES:
        reasons.append(Reason("BATCH_RECORD_CLOSED", f"Batch {batch_number}: {CLOSED_STATES[batch_state]}."))
    elif batch_state not in OPEN_STATES:
        why = NOT_YET.get(batch_state, f"it is {batch_state.replace('_', ' ')}")
        reasons.append(Reason("BATCH_NOT_RUNNING", f"Batch {batch_number}: {why}."))
    what = "returned" if action == RETURN else "wasted"
    if remainder.holds <= 0:
        reasons.append(Reason("CONTAINER_EMPTY", f"Container {c} is empty: nothing is left to be {what}."))
    elif quantity is not None and quantity <= 0:
        reasons.append(Reason("NOT_POSITIVE", f"The quantity {what} must be more than zero."))
    elif quantity is not None and quantity > remainder.holds:
        reasons.append(
            Reason(
                "MORE_THAN_HELD",
                f"Container {c} holds {_n(remainder.holds)} {unit}; {_n(quantity)} {unit} cannot be "
                f"{what} from it.",
            )
        )
    partial = quantity is not None and 0 < quantity < remainder.holds
    if action == WASTE and not reason.strip():
        reasons.append(
            Reason(
                "REASON_REQUIRED", "Say why the material goes to waste (spilled, contaminated, not reusable)."
            )
        )
    elif action == RETURN and partial and not reason.strip():
        assert quantity is not None
        reasons.append(
            Reason(
                "REASON_REQUIRED",
                f"{_n(quantity)} of the {_n(remainder.holds)} {unit} left in {c} comes back: say why not all "
                "of it (the rest stays in the container, to be returned or wasted).",
            )
        )
    if action == RETURN and not location.strip():
        reasons.append(Reason("LOCATION_REQUIRED", "Say where the returned container is put (its location)."))
    return Verdict(tuple(reasons))
