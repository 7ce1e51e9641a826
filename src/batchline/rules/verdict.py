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


class Refused(Exception):
    """A rule said no: raised by a service, carrying the verdict and its reasons in words."""

    def __init__(self, verdict: Verdict) -> None:
        self.verdict = verdict
        super().__init__(" ".join(r.message for r in verdict.reasons))

    @classmethod
    def because(cls, code: str, message: str) -> Refused:
        return cls(Verdict.of(Reason(code, message)))
