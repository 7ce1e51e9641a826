"""Limits of a recorded number (IPC-01, A11D-05, S88-04).

Two kinds, with different consequences:

- plausibility limits catch typing errors: a value outside them is refused
  and nothing is recorded ("60.0" typed as "600");
- specification limits (and optional action limits inside them) judge the
  process: a value outside them is recorded, shown red and raises an
  exception for review. It is never silently refused or silently accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .numbers import POINT, Notation, written
from .verdict import Reason, Verdict


@dataclass(frozen=True, slots=True)
class Range:
    low: Decimal | None = None
    high: Decimal | None = None

    def __post_init__(self) -> None:
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"low limit {self.low} is above high limit {self.high}")

    def contains(self, value: Decimal) -> bool:
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    def text(self, unit: str = "", notation: Notation = POINT) -> str:
        """The range for a person to read, its numbers in the site's notation."""
        u = f" {unit}" if unit else ""
        if self.low is not None and self.high is not None:
            return f"{written(self.low, notation)}–{written(self.high, notation)}{u}"
        if self.low is not None:
            return f"≥ {written(self.low, notation)}{u}"
        if self.high is not None:
            return f"≤ {written(self.high, notation)}{u}"
        return "no limit"


@dataclass(frozen=True, slots=True)
class NumberLimits:
    plausible: Range = Range()
    specification: Range = Range()
    action: Range = Range()

    def __post_init__(self) -> None:
        # Nested ranges: what is in specification must be plausible, what is inside
        # the action limits must be in specification.
        for inner, outer, what in (
            (self.specification, self.plausible, "specification limits lie outside the plausibility limits"),
            (self.action, self.specification, "action limits lie outside the specification limits"),
        ):
            for bound in (inner.low, inner.high):
                if bound is not None and not outer.contains(bound):
                    raise ValueError(what)


@dataclass(frozen=True, slots=True)
class Judgement:
    """What a value means against its limits. ``verdict`` refuses only implausible values."""

    verdict: Verdict
    in_specification: bool
    within_action: bool


def judge(
    value: Decimal,
    limits: NumberLimits,
    *,
    unit: str = "",
    label: str = "value",
    notation: Notation = POINT,
) -> Judgement:
    if not limits.plausible.contains(value):
        return Judgement(
            Verdict.of(
                Reason(
                    "VALUE_IMPLAUSIBLE",
                    f"{label} {written(value, notation)} {unit}".rstrip()
                    + f" cannot be right: it must lie within {limits.plausible.text(unit, notation)}. "
                    "Check for a typing error; nothing was recorded.",
                )
            ),
            in_specification=False,
            within_action=False,
        )
    return Judgement(
        Verdict(),
        in_specification=limits.specification.contains(value),
        within_action=limits.action.contains(value),
    )
