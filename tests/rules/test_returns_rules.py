"""When what is left of a dispensed container may go back to stock or to waste: plain data, no database."""

from __future__ import annotations

from decimal import Decimal

import pytest

from batchline.rules.returns import RETURN, WASTE, Remainder, may_move

LEFT = Remainder("C-000011", "PCM-0001", Decimal("0.5013"), "kg")


def codes(action: str = RETURN, **kw: object) -> list[str]:
    args: dict[str, object] = {
        "batch_number": "PCM-0001",
        "batch_state": "running",
        "remainder": LEFT,
        "quantity": None,
        "reason": "",
        "location": "WH-B-03",
    } | kw
    return may_move(action, **args).codes  # type: ignore[arg-type]


@pytest.mark.req("WD-12")
@pytest.mark.parametrize("state", ["running", "complete", "aborted"])
def test_the_whole_remainder_goes_back_while_the_batch_runs_once_complete_or_aborted(state: str) -> None:
    assert codes(batch_state=state) == []
    assert codes(WASTE, batch_state=state, reason="spilled") == []


@pytest.mark.req("WD-12", "RBE-06")
@pytest.mark.parametrize(
    ("state", "code", "words"),
    [
        ("in_review", "BATCH_RECORD_CLOSED", "production review is signed"),
        ("qa_released", "BATCH_RECORD_CLOSED", "released by QA: its record is closed"),
        ("rejected", "BATCH_RECORD_CLOSED", "rejected by QA"),
        ("held", "BATCH_NOT_RUNNING", "held: resume it first"),
        ("released", "BATCH_NOT_RUNNING", "has not started"),
    ],
)
def test_outside_those_states_it_is_refused_in_words(state: str, code: str, words: str) -> None:
    verdict = may_move(
        RETURN, batch_number="PCM-0001", batch_state=state, remainder=LEFT, quantity=None, location="WH"
    )
    assert verdict.codes == [code] and words in verdict.reasons[0].message


@pytest.mark.req("WD-12", "A11-05")
def test_quantities_reasons_and_place_are_judged_every_reason_at_once() -> None:
    assert codes(quantity=Decimal("0.6")) == ["MORE_THAN_HELD"]
    assert codes(quantity=Decimal("0")) == ["NOT_POSITIVE"]
    assert codes(quantity=Decimal("0.5013")) == []  # all of it, weighed: no reason needed
    assert codes(quantity=Decimal("0.5")) == ["REASON_REQUIRED"]
    assert codes(quantity=Decimal("0.5"), reason="dust in the scoop") == []
    assert codes(location=" ", quantity=Decimal("0.5")) == ["REASON_REQUIRED", "LOCATION_REQUIRED"]
    assert codes(WASTE, location="") == ["REASON_REQUIRED"]  # waste always says why; it is put nowhere
    assert codes(remainder=Remainder("C-000011", "PCM-0001", Decimal(0), "kg")) == ["CONTAINER_EMPTY"]


@pytest.mark.req("WD-12")
@pytest.mark.parametrize("dispensed_for", [None, "PCM-0002"])
def test_only_a_container_weighed_out_for_this_batch_is_moved_from_its_screen(
    dispensed_for: str | None,
) -> None:
    other = Remainder("C-000001", dispensed_for, Decimal(25), "kg")
    assert codes(remainder=other, batch_state="in_review") == ["NOT_DISPENSED_FOR_BATCH"]
