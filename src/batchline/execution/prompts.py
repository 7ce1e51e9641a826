"""What the operator confirms before a value outside its specification is recorded (issue 11).

A value outside its specification is recorded, shown red and raises an
exception (rules/limits.py): it is never refused. But it is recorded only once
the person says so, having read which value, its limits and what recording it
does (an exception for QA; for a critical parameter, a batch stopped until QA
dispositions it). Without that confirmation the step is not completed and
nothing is written: the server asks, for every client (the page opens a
dialog, the API answers 409 ``CONFIRM_OUT_OF_SPECIFICATION``).

The question is not recorded as an exception. Nothing was refused: no gate
said no to a GMP action, and no value was yet part of the record; the limits
the question repeats are printed beside the field already. A value recorded
out of specification raises its exception the moment it is recorded, and a
recorded value is changed only by a signed correction, itself an exception.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from batchline.rules import exceptions
from batchline.rules.limits import judge
from batchline.rules.verdict import Reason, Refused, Verdict

from .scaling import Ratio, number_limits, range_text

CONFIRM_CODE = "CONFIRM_OUT_OF_SPECIFICATION"


class ConfirmationRequired(Refused):
    """Values outside their specification wait for the person's confirmation; nothing was written."""


def out_of_specification(
    entries: Iterable[tuple[Mapping[str, Any], str, Decimal | None]], ratio: Ratio
) -> Verdict:
    """One reason per entered number outside its specification, saying what recording it does."""
    reasons = []
    for definition, text, number in entries:
        if number is None:
            continue
        limits = number_limits(definition, ratio)
        unit = definition.get("unit", "")
        if judge(number, limits, unit=unit, label=definition["label"]).in_specification:
            continue
        critical = bool(definition.get("critical"))
        code = "CRITICAL_OUT_OF_SPECIFICATION" if critical else "OUT_OF_SPECIFICATION"
        consequence = "it raises an exception for QA"
        if exceptions.classify(code).blocks:
            consequence += " and, as a critical value, stops the batch until QA dispositions it"
        reasons.append(
            Reason(
                CONFIRM_CODE,
                f"{definition['label']} {text} {unit}".rstrip()
                + f" is outside its specification {range_text(limits.specification, unit)}: "
                f"recorded, {consequence}. Confirm to record it.",
            )
        )
    return Verdict(tuple(reasons))
