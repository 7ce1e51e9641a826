"""The trace matrix from the catalogue, the risk assessment and the OQ's results (VAL-01..03)."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchline.validation import risk, urs
from batchline.validation.trace import TestResult, trace

SHARED = Path(__file__).resolve().parents[3] / "shared" / "REQUIREMENTS.md"


@pytest.mark.req("VAL-01")
def test_the_shipped_catalogue_is_the_one_batchline_is_built_against() -> None:
    if not SHARED.exists():
        pytest.skip(f"{SHARED} is not beside this checkout")
    assert urs.URS_FILE.read_text(encoding="utf-8") == SHARED.read_text(encoding="utf-8"), (
        "src/batchline/validation/urs.md differs from shared/REQUIREMENTS.md: copy it over "
        "(and re-assess risk.toml for what changed)"
    )


@pytest.mark.req("VAL-01", "VAL-02")
def test_every_requirement_has_its_priority_and_its_risk_assessed() -> None:
    requirements = urs.requirements()
    assessment = risk.assessment()
    ids = [r.id for r in requirements]
    assert len(ids) == len(set(ids)) and {"P11-01", "A11-14", "DI-01", "LBL-01", "NFR-06"} <= set(ids)
    for requirement in requirements:
        found = risk.risk_of(requirement, assessment)  # raises for a family nobody assessed
        assert found.tier in risk.TIERS
    p0 = [r.id for r in requirements if risk.priority_of(r, assessment) == "P0"]
    assert "P11-05" in p0 and "DI-03" in p0  # ALCOA+ rows carry no priority: the assessment makes them P0
    assert "A11D-01" not in p0


def test_a_catalogue_row_listed_twice_or_a_family_not_assessed_is_refused_in_words() -> None:
    text = "## 1. Part 11\n| ID | Clause | Req | Verify | Pri |\n|---|---|---|---|---|\n| P11-01 | a | b | c | P0 |\n"
    with pytest.raises(ValueError, match="P11-01 is listed twice"):
        urs.requirements(text + "| P11-01 | a | b | c | P1 |\n")
    [new] = urs.requirements(text.replace("P11-01", "ZZ-01"))
    with pytest.raises(risk.RiskProblem, match="family ZZ is not in the risk assessment"):
        risk.risk_of(new, risk.assessment())
    with pytest.raises(risk.RiskProblem, match="family X has no tier"):
        risk.assessment(
            '[families.X]\nfunction = "f"\ngxp_impact = "direct"\nhigh_process_risk = true\n'
            'gamp_category = 4\nrationale = "r"\n'
        )


def marked(*reqs: str, outcome: str = "passed", name: str = "test_x") -> TestResult:
    return TestResult(nodeid=f"tests/t.py::{name}", file="tests/t.py", reqs=reqs, outcome=outcome)


def every_p0_shown() -> list[TestResult]:
    assessment = risk.assessment()
    return [
        marked(r.id, name=f"test_{r.id}")
        for r in urs.requirements()
        if risk.priority_of(r, assessment) == "P0"
    ]


@pytest.mark.req("VAL-03", "A11-04")
def test_the_matrix_holds_every_p0_requirement_and_passes_only_when_each_is_shown() -> None:
    results = every_p0_shown()
    matrix = trace(urs.requirements(), risk.assessment(), results)
    assert matrix.ok and not matrix.gaps
    rows = {row.requirement.id: row for row in matrix.rows}
    assert set(rows) == {r.id for r in urs.requirements()}
    assert rows["P11-05"].status == "shown" and rows["P11-05"].risk.tier == "high"
    assert matrix.summary()["p0_shown"] == matrix.summary()["p0"] == len(results)


@pytest.mark.req("VAL-03", "VAL-05", "A11-04")
def test_a_removed_mark_an_unknown_id_and_a_failed_test_each_keep_the_package_from_passing() -> None:
    results = [r for r in every_p0_shown() if r.reqs != ("LBL-01",)]  # the mark removed
    matrix = trace(urs.requirements(), risk.assessment(), results)
    assert not matrix.ok and matrix.gaps == [("LBL-01", "no test carries its ID")]

    typo = trace(
        urs.requirements(), risk.assessment(), [*every_p0_shown(), marked("LBL-1O", name="test_typo")]
    )
    assert not typo.ok and typo.unknown == {"LBL-1O": ["tests/t.py::test_typo"]}

    failing = [*every_p0_shown(), marked("P11-05", outcome="failed", name="test_broken")]
    broken = trace(urs.requirements(), risk.assessment(), failing)
    assert ("P11-05", "1 of its 2 tests failed") in broken.gaps and len(broken.failed) == 1

    skipped = [r for r in every_p0_shown() if r.reqs != ("DI-03",)] + [marked("DI-03", outcome="skipped")]
    assert ("DI-03", "its 1 tests were skipped") in trace(urs.requirements(), risk.assessment(), skipped).gaps
