"""Review by exception as plain rules: the taxonomy, the completeness check, the order of stages."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from batchline.rules import exceptions, review, triage
from batchline.rules.yields import Reconciliation, Yield

SRC = Path(__file__).resolve().parents[2] / "src" / "batchline"


def step(key="s1", state="done", signs=False, verify=False, signed=False, verified=False):
    return review.StepFacts(key, key.upper(), state, signs, verify, signed, verified)


def facts(**kw):
    base = dict(number="B-1", state="complete", steps=[step()])
    return review.BatchFacts(**{**base, **kw})


def exc(id=1, code="LATE_ENTRY", message="late", severity="low", decision="", **kw):
    return review.ExceptionFacts(id, code, severity, message, decision=decision, **kw)


def low_yield(step="weigh"):
    return Yield("Granulation", Decimal(91), Decimal(100), "kg", Decimal(95), Decimal(102), step=step)


def short_lot():
    return Reconciliation(
        "L-7", "MGST", "kg", Decimal("1.5"), Decimal("0.9987"), Decimal(0), Decimal(0), Decimal("0.5")
    )


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
        ({"exceptions": [exc()]}, "EXCEPTIONS", "LATE_ENTRY: late"),
        (
            {"deviations": [review.DeviationFacts("DEV-2026-0001", "spill", "Open", closed=False)]},
            "DEVIATIONS",
            "DEV-2026-0001: spill (open)",
        ),
        (
            {"yields": [Yield("Granulation", None, Decimal(100), "kg", Decimal(95), Decimal(102))]},
            "LIMITS",
            "Granulation: yield not computed (no actual quantity)",
        ),
        (
            {"yields": [low_yield()]},
            "LIMITS",
            "Granulation: yield 91.0 % (91 of 100 kg; limits 95–102 %): no exception was raised",
        ),
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
    bad = review.completeness(facts(exceptions=[exc(code="LATE_ENTRY", message="y")]))
    assert review.may_sign("qa_review", ["production_review"], bad, qp_required=False).codes == [
        "INCOMPLETE_EXCEPTIONS"
    ]
    assert review.may_sign("rejected", ["production_review"], bad, qp_required=False).allowed
    assert review.may_sign("rejected", ["rejected"], ok, qp_required=False).codes == ["ALREADY_DISPOSITIONED"]
    assert review.next_stage(["production_review", "qa_review", "released"], qp_required=False) is None


@pytest.mark.req("RBE-03", "YLD-02", "YLD-03")
def test_a_yield_or_reconciliation_outside_its_limits_is_no_until_qa_decides_on_its_exception() -> None:
    raised = exc(7, "RECONCILIATION_OUT_OF_LIMITS", "short", "high", material="L-7")
    waiting = facts(reconciliation=[short_lot()], exceptions=[raised])
    (limits,) = [c for c in review.completeness(waiting) if c.code == "LIMITS"]
    # The table shows 0.5013 kg unaccounted and its exception: the checklist says the same.
    assert limits.answer == "no" and limits.findings == (
        "reconciliation of lot L-7 (MGST): issued 1.5, consumed 0.9987, returned 0, waste 0 kg: "
        "0.5013 kg unaccounted (allowed ±0.5 %): exception #7 waits for its disposition",
    )
    assert limits.summary == "1 yield or reconciliation outside limits"
    accepted = facts(
        reconciliation=[short_lot()], exceptions=[exc(7, raised.code, decision="accepted", material="L-7")]
    )
    (limits,) = [c for c in review.completeness(accepted) if c.code == "LIMITS"]
    assert (
        limits.ok and limits.answer == "accepted" and limits.notes[0].endswith("exception #7 accepted by QA")
    )
    escalated = exc(7, raised.code, decision="deviation", deviation="DEV-2026-0003", material="L-7")
    (limits,) = [
        c
        for c in review.completeness(facts(reconciliation=[short_lot()], exceptions=[escalated]))
        if c.code == "LIMITS"
    ]
    assert limits.notes[0].endswith("exception #7 escalated to DEV-2026-0003")
    # A running batch has not been reconciled yet; a yield's exception belongs to its own step.
    running = facts(state="running", reconciliation=[short_lot()], yields=[low_yield("weigh")])
    (limits,) = [c for c in review.completeness(running) if c.code == "LIMITS"]
    assert limits.findings[1].endswith("judged when the batch completes")
    other_step = facts(
        yields=[low_yield("weigh")],
        exceptions=[exc(3, "YIELD_OUT_OF_LIMITS", step="blend", decision="accepted")],
    )
    (limits,) = [c for c in review.completeness(other_step) if c.code == "LIMITS"]
    assert limits.findings[0].endswith("no exception was raised")


@pytest.mark.req("RBE-03")
def test_a_failing_check_is_summed_up_in_words_that_say_it_failed() -> None:
    checks = {
        c.code: c
        for c in review.completeness(
            facts(
                state="running",
                steps=[step(state="running"), step("s2", state="pending")],
                exceptions=[exc(1), exc(2), exc(3)],
            )
        )
    }
    assert checks["EXCEPTIONS"].summary == "3 exceptions open"
    assert checks["STEPS_DONE"].summary == "the batch is running; 2 steps not done"
    assert checks["SIGNATURES"].summary == "" and checks["SIGNATURES"].answer == "yes"
    assert checks["EXCEPTIONS"].as_dict()["notes"] == [] and checks["EXCEPTIONS"].as_dict()["ok"] is False


@pytest.mark.req("RBE-02", "DI-06")
def test_results_come_first_most_severe_first_and_refused_attempts_are_folded_by_kind() -> None:
    found = [
        exc(1, "REFUSED_PREDECESSOR_OPEN", "Mix first"),
        exc(2, "MANUAL_WEIGHT_ENTRY", "typed", "medium"),
        exc(3, "REFUSED_LOT_EXPIRED", "expired"),
        exc(4, "OUT_OF_SPECIFICATION", "w2 640 mg", "medium"),
        exc(5, "REFUSED_PREDECESSOR_OPEN", "Mix first"),
        exc(6, "CRITICAL_OUT_OF_SPECIFICATION", "w1 660 mg", "critical", blocks=True),
        exc(7, "REFUSED_STEP_NOT_RUNNING", "not started", decision="accepted"),
        exc(8, "OVERRIDE", "override", "high"),
        exc(9, "ACTION_LIMIT", "w3", "low"),
    ]
    groups = triage.groups(found)
    assert [(g.key, [e.id for e in g.exceptions]) for g in groups] == [
        ("results", [6, 4, 9]),  # the critical out-of-specification result first
        ("process", [8, 2]),
        ("refused:out-of-sequence attempt", [1, 5, 7]),
        ("refused:material condition failed", [3]),
    ]
    assert [g.folded for g in groups] == [False, False, True, True]
    assert groups[0].severity == "critical" and groups[2].severity == "low"
    assert groups[2].open_ids == [1, 5]  # the dispositioned one is shown, not chosen again
    assert (
        triage.refused_summary(groups) == "4 refused attempts: 3 out-of-sequence attempts, 1 material refused"
    )
    assert triage.refused_summary(groups[:2]) == ""
    # Every kind of refusal the taxonomy knows has its words for a folded group.
    kinds = {exceptions.classify(f"REFUSED_{code}").kind for code in exceptions._REFUSAL}
    assert kinds <= set(triage._REFUSAL_WORDS), kinds - set(triage._REFUSAL_WORDS)


@pytest.mark.req("RBE-03", "RBE-02")
def test_the_checklist_names_each_open_result_and_folds_the_open_slips_by_kind() -> None:
    found = [
        exc(1, "REFUSED_PREDECESSOR_OPEN", "Mix first"),
        exc(2, "REFUSED_PREDECESSOR_OPEN", "Mix first"),
        exc(3, "REFUSED_STEP_NOT_RUNNING", "Start it first"),
        exc(4, "CRITICAL_OUT_OF_SPECIFICATION", "w1 660 mg", "critical"),
        exc(5, "REFUSED_LOT_EXPIRED", "L-1 expired", decision="accepted"),
    ]
    (check,) = [c for c in review.completeness(facts(exceptions=found)) if c.code == "EXCEPTIONS"]
    assert check.findings == (
        "CRITICAL_OUT_OF_SPECIFICATION: w1 660 mg",
        "3 out-of-sequence attempts (REFUSED_PREDECESSOR_OPEN, REFUSED_STEP_NOT_RUNNING): Mix first "
        "(and 1 other message)",
    )
    assert check.summary == "4 exceptions open" and check.as_dict()["count"] == 4
