"""A laboratory result against the recipe's limits: read, converted into their unit, judged (IPC-01).

The limits are the ``result`` block of the sampling step in the batch's control recipe, scaled
to the batch where it says ``scales`` (``execution.scaling``). Units go through pint
(``batchline.units``): a result in mg/g is judged against limits in % (1 mg/g is 0.1 %); one
whose unit cannot be converted (mg against %·min…) or that pint does not know is refused in
words. Batchline has no material specification in its master data: a lot sample is judged by
its sampling step's limits like any other (docs/integration.md, LIMS).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import pint

from batchline.execution.scaling import Ratio, number_limits, range_text
from batchline.rules.limits import NumberLimits
from batchline.rules.verdict import Reason
from batchline.units import UnknownUnit, check_unit, convert

# StepValue.number and LabResult.value are numeric(28, 9).
MAX_VALUE = Decimal("1e19")
PLACES = Decimal("1e-9")


@dataclass(frozen=True)
class Judgement:
    judged_value: Decimal | None  # in the unit of the limits; None: nothing to judge against
    judged_unit: str
    specification: str  # the limits as judged, for a person to read ("90–110 %"); "" without limits
    in_specification: bool | None  # None: the recipe gives no limits for this test
    within_action: bool | None


def definition_of(spec: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The ``result`` block of a sampling step's spec, if the recipe gives one."""
    return (spec.get("sampling") or {}).get("result") or None


def limits(definition: Mapping[str, Any], ratio: Ratio) -> NumberLimits:
    return number_limits(definition, ratio)


def specification_text(definition: Mapping[str, Any] | None, ratio: Ratio) -> str:
    if definition is None:
        return ""
    return range_text(limits(definition, ratio).specification, definition.get("unit", ""))


def read_value(value: Any) -> tuple[Decimal | None, str]:
    """The value as a number and as written (a JSON number is a Decimal already), or None."""
    text = format(value, "f") if isinstance(value, Decimal) else str(value).strip()
    try:
        number = Decimal(text)
    except (InvalidOperation, ValueError):
        return None, text[:60]
    if not number.is_finite() or abs(number) >= MAX_VALUE or number != number.quantize(PLACES):
        return None, text[:60]
    return number, text[:60]


def value_reason(result_id: str, text: str) -> Reason:
    return Reason(
        "NOT_A_NUMBER",
        f"Result {result_id}: {text!r} is not a number Batchline can record (at most 19 digits before "
        "the point and 9 after): the laboratory's numeric result is sent with a point as its decimal sign.",
    )


def judge(
    *,
    result_id: str,
    test: str,
    definition: Mapping[str, Any] | None,
    ratio: Ratio,
    value: Decimal,
    unit: str,
    lims_verdict: str,
) -> tuple[Judgement | None, Reason | None]:
    """The result judged against ``definition``'s limits, or why it cannot be (a unit)."""
    try:
        check_unit(unit)
    except UnknownUnit:
        return None, Reason(
            "UNKNOWN_UNIT",
            f"Result {result_id}: {unit.strip()[:30]!r} is not a unit Batchline knows"
            + (f"; send it in {definition.get('unit') or 'no unit'}." if definition else "."),
        )
    if definition is None:
        return Judgement(None, "", "", None, None), None
    target = definition.get("unit", "")
    try:
        converted = (
            value
            if unit.strip() == target
            else convert(value, unit.strip() or "dimensionless", target or "dimensionless")
        )
    except (pint.errors.DimensionalityError, pint.errors.PintError, ValueError, TypeError, ArithmeticError):
        return None, Reason(
            "UNIT_NOT_CONVERTIBLE",
            f"Result {result_id} is in {unit.strip() or 'no unit'}, which cannot be converted to "
            f"{target or 'a plain number'}, the unit of the limits for {test}.",
        )
    converted = Decimal(converted).quantize(PLACES)
    if abs(converted) >= MAX_VALUE:
        return None, value_reason(result_id, f"{value} {unit}")
    judged = limits(definition, ratio)
    spec = range_text(judged.specification, target)
    has_spec = judged.specification.low is not None or judged.specification.high is not None
    has_action = judged.action.low is not None or judged.action.high is not None
    if not has_spec and not has_action:
        return Judgement(converted, target, "", None, None), None
    # The LIMS may test criteria the recipe does not state: its own "fail" is out of specification too.
    in_spec = (judged.specification.contains(converted) if has_spec else True) and lims_verdict != "fail"
    within = judged.action.contains(converted) if has_action else None
    return Judgement(converted, target, spec, in_spec, within), None
