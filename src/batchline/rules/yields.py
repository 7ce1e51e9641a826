"""Yields and reconciliations as plain arithmetic on quantities already in one unit (YLD-01..03).

Percentages are kept exact (Decimal) and rounded only for display, so a yield
on a limit is judged on the limit, not on a rounded neighbour.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Yield:
    operation: str
    actual: Decimal | None  # None: the actual value is not recorded (yet)
    theoretical: Decimal | None  # None: nothing to compare with (no components used)
    unit: str
    low: Decimal
    high: Decimal
    step: str = ""  # the step that records the actual quantity, where it is judged

    @property
    def percent(self) -> Decimal | None:
        if self.actual is None or not self.theoretical:
            return None
        return self.actual * 100 / self.theoretical

    @property
    def within(self) -> bool | None:
        p = self.percent
        return None if p is None else self.low <= p <= self.high

    def text(self) -> str:
        p = self.percent
        if p is None:
            return f"{self.operation}: yield not computed ({'no actual quantity' if self.actual is None else 'no theoretical quantity'})"
        return (
            f"{self.operation}: yield {p.quantize(Decimal('0.1'))} % "
            f"({self.actual.normalize():f} of {self.theoretical.normalize():f} {self.unit}; "  # type: ignore[union-attr]
            f"limits {self.low.normalize():f}–{self.high.normalize():f} %)"
        )


@dataclass(frozen=True)
class Reconciliation:
    """One lot's material in one batch: what was issued against where it went."""

    lot: str
    material: str
    unit: str
    issued: Decimal
    consumed: Decimal
    returned: Decimal
    waste: Decimal
    tolerance_percent: Decimal
    held: Decimal = Decimal(0)  # of the difference: what its dispensed containers still hold

    @property
    def difference(self) -> Decimal:
        return self.issued - self.consumed - self.returned - self.waste

    @property
    def within(self) -> bool:
        return abs(self.difference) <= self.issued * self.tolerance_percent / 100

    def text(self) -> str:
        return (
            f"lot {self.lot} ({self.material}): issued {self.issued.normalize():f}, consumed "
            f"{self.consumed.normalize():f}, returned {self.returned.normalize():f}, waste {self.waste.normalize():f} "
            f"{self.unit}: {self.difference.normalize():f} {self.unit} unaccounted "
            f"(allowed ±{self.tolerance_percent.normalize():f} %)"
            + (
                f"; {self.held.normalize():f} {self.unit} of it still in its dispensed containers: "
                "return it to stock or waste it"
                if self.held > 0
                else ""
            )
        )
