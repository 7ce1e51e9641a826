"""The trace matrix: requirement → risk → tests → results, and what keeps a package from passing.

Plain Python over the catalogue (urs.py), the risk assessment (risk.py) and the
results the OQ run recorded (pytest_plugin.py). A P0 requirement is *shown*
when at least one test that carries its ID passed and none failed; a P0
requirement not shown is a gap. A test marked with an ID the catalogue does
not hold is a finding (a typo would otherwise trace a requirement to nothing),
and so is every failed test.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .risk import Risk, priority_of, risk_of
from .urs import Requirement

GATED = "P0"


@dataclass(frozen=True)
class TestResult:
    __test__ = False  # not a pytest test class, though its name says Test

    nodeid: str
    file: str
    reqs: tuple[str, ...]
    outcome: str  # passed, failed, skipped
    duration: float = 0.0
    file_sha256: str = ""
    output: str = ""
    runs: int = 1  # a test generated per API operation runs many times under one node id

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> TestResult:
        return cls(
            nodeid=raw["nodeid"],
            file=raw.get("file", ""),
            reqs=tuple(raw.get("reqs", ())),
            outcome=raw["outcome"],
            duration=float(raw.get("duration", 0.0)),
            file_sha256=raw.get("file_sha256", ""),
            output=raw.get("output", ""),
            runs=int(raw.get("runs", 1)),
        )


@dataclass
class Row:
    requirement: Requirement
    risk: Risk
    priority: str | None
    tests: list[TestResult] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(t.outcome == "passed" for t in self.tests)

    @property
    def failed(self) -> int:
        return sum(t.outcome == "failed" for t in self.tests)

    @property
    def status(self) -> str:
        if self.failed:
            return "failing"
        if self.passed:
            return "shown"
        if self.tests:
            return "skipped"
        return "not shown"

    @property
    def gap(self) -> str | None:
        """Why a gated requirement keeps the package from passing, or None."""
        if self.priority != GATED or self.status == "shown":
            return None
        if self.status == "failing":
            return f"{self.failed} of its {len(self.tests)} tests failed"
        if self.status == "skipped":
            return f"its {len(self.tests)} tests were skipped"
        return "no test carries its ID"


@dataclass
class Trace:
    rows: list[Row]
    unknown: dict[str, list[str]]  # an ID the catalogue does not hold → the tests marked with it
    failed: list[TestResult]
    tests: int

    @property
    def gaps(self) -> list[tuple[str, str]]:
        return [(r.requirement.id, r.gap) for r in self.rows if r.gap]

    @property
    def ok(self) -> bool:
        return not self.gaps and not self.unknown and not self.failed

    def summary(self) -> dict[str, Any]:
        gated = [r for r in self.rows if r.priority == GATED]
        return {
            "requirements": len(self.rows),
            "p0": len(gated),
            "p0_shown": sum(r.status == "shown" for r in gated),
            "tests": self.tests,
            "tests_failed": len(self.failed),
            "unknown_ids": sorted(self.unknown),
            "gaps": [{"id": rid, "why": why} for rid, why in self.gaps],
            "ok": self.ok,
        }


def trace(
    requirements: Iterable[Requirement], risks: Mapping[str, Risk], results: Iterable[TestResult]
) -> Trace:
    rows = {r.id: Row(r, risk_of(r, dict(risks)), priority_of(r, dict(risks))) for r in requirements}
    unknown: dict[str, list[str]] = {}
    failed, count = [], 0
    for result in results:
        count += result.runs
        if result.outcome == "failed":
            failed.append(result)
        for rid in result.reqs:
            if rid in rows:
                rows[rid].tests.append(result)
            else:
                unknown.setdefault(rid, []).append(result.nodeid)
    return Trace(list(rows.values()), unknown, failed, count)
