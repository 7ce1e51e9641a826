"""Verdicts: what a rule says, with every reason and a stable code."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Reason:
    code: str  # stable, machine-readable, e.g. "LOT_EXPIRED"
    message: str  # for the person in front of the screen


@dataclass(frozen=True, slots=True)
class Verdict:
    reasons: tuple[Reason, ...] = field(default=())

    @property
    def allowed(self) -> bool:
        return not self.reasons

    def __bool__(self) -> bool:
        return self.allowed

    @property
    def codes(self) -> list[str]:
        return [r.code for r in self.reasons]

    @classmethod
    def of(cls, *reasons: Reason | None) -> Verdict:
        return cls(tuple(r for r in reasons if r is not None))


ALLOWED = Verdict()
