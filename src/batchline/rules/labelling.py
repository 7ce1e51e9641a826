"""Labeling control: reconciliation of labels issued, applied, destroyed and returned (LBL-03, 21 CFR 211.125).

Plain numbers in, a verdict out. 211.125(c) asks for the quantities of labeling issued, used and
returned to be reconciled, and a discrepancy outside "narrow preset limits" to be evaluated and
investigated (211.192); the recipe gives the limit as a count or as a percentage of the labels
issued, and with none the count must balance exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class LabelCount:
    issued: int
    applied: int
    destroyed: int
    returned: int
    allowed: Decimal  # the largest difference accepted, in labels

    @property
    def difference(self) -> int:
        """Labels issued that are not accounted for (negative: more accounted for than issued)."""
        return self.issued - self.applied - self.destroyed - self.returned

    @property
    def within(self) -> bool:
        return abs(self.difference) <= self.allowed

    def text(self) -> str:
        balance = (
            "balanced"
            if self.difference == 0
            else f"{abs(self.difference)} {'unaccounted for' if self.difference > 0 else 'more than issued'}"
        )
        return (
            f"labels issued {self.issued}, applied {self.applied}, destroyed {self.destroyed}, "
            f"returned {self.returned}: {balance} (limit ± {_plain(self.allowed)})"
        )


def allowed_difference(issued: int, *, absolute: Decimal | None, percent: Decimal | None) -> Decimal:
    """The recipe's limit in labels: a count, a percentage of those issued, or none (exact)."""
    if absolute is not None:
        return Decimal(absolute)
    if percent is not None:
        return Decimal(issued) * Decimal(percent) / 100
    return Decimal(0)


def reconcile(
    issued: int,
    applied: int,
    destroyed: int,
    returned: int,
    *,
    absolute: Decimal | None,
    percent: Decimal | None,
) -> LabelCount:
    return LabelCount(
        issued, applied, destroyed, returned, allowed_difference(issued, absolute=absolute, percent=percent)
    )


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text
