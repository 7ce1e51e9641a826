"""Review by exception as plain rules: the taxonomy, the completeness check, the order of stages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from batchline.rules import exceptions, review

SRC = Path(__file__).resolve().parents[2] / "src" / "batchline"


def step(key="s1", state="done", signs=False, verify=False, signed=False, verified=False):
    return review.StepFacts(key, key.upper(), state, signs, verify, signed, verified)


def facts(**kw):
    base = dict(
        number="B-1", state="complete", steps=[step()], open_exceptions=[], open_deviations=[], unbalanced=[]
    )
    return review.BatchFacts(**{**base, **kw})


def failing(checks):
    return {c.code: list(c.findings) for c in checks if not c.ok}


@pytest.mark.req("RBE-01")
def test_every_exception_code_the_engine_raises_is_in_the_taxonomy() -> None:
    raised = set()
    for path in SRC.rglob("*.py"):
        text = path.read_text()
        # Every literal code handed to the one function that records exceptions.
        raised |= set(re.findall(r'exception_raise\((?:[^()]|\([^()]*\))*?code="([A-Z_]+)"', text, re.S))
    raised |= {"HOLD", "ABORT"}  # batch_command raises code=command.upper()
    assert {"MANUAL_WEIGHT_ENTRY", "FEFO_OVERRIDE", "LATE_ENTRY", "CORRECTION"} <= raised
    for code in raised:
        kind = exceptions.classify(code)  # KeyError if the taxonomy misses it
        assert kind.category in exceptions.CATEGORIES and kind.severity in exceptions.SEVERITIES
    # Each family the issue names is present.
    categories = {t.category for t in exceptions.TYPES.values()}
    assert categories == set(exceptions.CATEGORIES)
    assert exceptions.classify("REFUSED_LOT_EXPIRED").kind == "material condition failed"
    assert exceptions.classify("REFUSED_EQUIPMENT_DIRTY").kind == "equipment condition failed"
    assert exceptions.classify("REFUSED_QUALIFICATION_EXPIRED").kind == "qualification condition failed"
    assert exceptions.classify("REFUSED_PREDECESSOR_OPEN").kind == "out-of-sequence attempt"
    assert exceptions.classify("REFUSED_SIGNER_IS_NOT_PERFORMER").category == "signature"
    assert exceptions.classify("CRITICAL_OUT_OF_SPECIFICATION").blocks
    with pytest.raises(KeyError, match="not in the taxonomy"):
        exceptions.classify("SOMETHING_NEW")


@pytest.mark.req("RBE-03")
def test_a_complete_batch_passes_every_check() -> None:
    checks = review.completeness(facts())
    assert [c.code for c in checks] == [
        "STEPS_DONE",
        "SIGNATURES",
        "EXCEPTIONS",
        "DEVIATIONS",
        "LIMITS",
        "GENEALOGY",
    ]
    assert all(c.ok for c in checks)


@pytest.mark.req("RBE-03")
@pytest.mark.parametrize(
    ("changes", "code", "finding"),
    [
        ({"steps": [step(state="running")]}, "STEPS_DONE", "S1 (running)"),
        ({"state": "running"}, "STEPS_DONE", "the batch is running"),
        ({"steps": [step(signs=True)]}, "SIGNATURES", "S1: performer's signature"),
        ({"steps": [step(verify=True, signed=True)]}, "SIGNATURES", "S1: verification"),
        ({"open_exceptions": ["LATE_ENTRY: late"]}, "EXCEPTIONS", "LATE_ENTRY: late"),
        ({"open_deviations": ["DEV-2026-0001: spill (open)"]}, "DEVIATIONS", "DEV-2026-0001: spill (open)"),
        ({"limit_failures": ["granulation yield 91 %"]}, "LIMITS", "granulation yield 91 %"),
        ({"unbalanced": ["C-000009 still holds 0.5 kg"]}, "GENEALOGY", "C-000009 still holds 0.5 kg"),
    ],
)
def test_each_completeness_rule_names_what_is_missing(changes, code, finding) -> None:
    assert failing(review.completeness(facts(**changes))) == {code: [finding]}


@pytest.mark.req("RBE-06")
def test_stages_are_signed_in_order_and_only_on_a_complete_record() -> None:
    ok = review.completeness(facts())
    assert review.next_stage([], qp_required=False) == "production_review"
    assert review.may_sign("production_review", [], ok, qp_required=False).allowed
    assert review.may_sign("qa_review", [], ok, qp_required=False).codes == ["OUT_OF_ORDER"]
    assert review.may_sign("released", ["production_review"], ok, qp_required=False).codes == ["OUT_OF_ORDER"]
    assert review.may_sign("released", ["production_review", "qa_review"], ok, qp_required=False).allowed
    # With the qualified person's certification configured, it comes before release.
    assert review.may_sign("released", ["production_review", "qa_review"], ok, qp_required=True).codes == [
        "OUT_OF_ORDER"
    ]
    assert review.next_stage(["production_review", "qa_review"], qp_required=True) == "qp_certification"
    # An incomplete record is named, stage by stage; a rejection needs no complete record.
    bad = review.completeness(facts(open_exceptions=["X: y"]))
    assert review.may_sign("qa_review", ["production_review"], bad, qp_required=False).codes == [
        "INCOMPLETE_EXCEPTIONS"
    ]
    assert review.may_sign("rejected", ["production_review"], bad, qp_required=False).allowed
    assert review.may_sign("rejected", ["rejected"], ok, qp_required=False).codes == ["ALREADY_DISPOSITIONED"]
    assert review.next_stage(["production_review", "qa_review", "released"], qp_required=False) is None
