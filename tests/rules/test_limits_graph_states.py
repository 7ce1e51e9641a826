"""Limits, step ordering and life-cycles, without a database."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from batchline.rules import states
from batchline.rules.graph import CycleError, ancestors, topological_order
from batchline.rules.limits import NumberLimits, Range, judge

LIMITS = NumberLimits(
    plausible=Range(D("300"), D("900")),
    specification=Range(D("570"), D("630")),
    action=Range(D("580"), D("620")),
)


@pytest.mark.req("IPC-01", "A11D-05", "A11-08")
@pytest.mark.parametrize(
    ("value", "refused", "in_spec", "in_action"),
    [
        ("600", False, True, True),
        ("570", False, True, False),  # limits are inclusive
        ("630", False, True, False),
        ("575", False, True, False),
        ("569.9", False, False, False),
        ("631", False, False, False),
        ("300", False, False, False),
        ("299.9", True, False, False),
        ("6000", True, False, False),
    ],
)
def test_a_value_is_judged_against_plausibility_specification_and_action(
    value, refused, in_spec, in_action
) -> None:
    j = judge(D(value), LIMITS, unit="mg", label="Tablet weight")
    assert (not j.verdict.allowed, j.in_specification, j.within_action) == (refused, in_spec, in_action)


def test_an_implausible_value_is_refused_in_words() -> None:
    (reason,) = judge(D("6000"), LIMITS, unit="mg", label="Tablet weight").verdict.reasons
    assert reason.code == "VALUE_IMPLAUSIBLE"
    assert reason.message.startswith("Tablet weight 6000 mg cannot be right: it must lie within 300–900 mg")


@pytest.mark.req("IPC-01")
def test_inverted_or_misnested_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="above high limit"):
        Range(D("10"), D("1"))
    with pytest.raises(ValueError, match="outside the plausibility"):
        NumberLimits(plausible=Range(D("0"), D("10")), specification=Range(D("5"), D("11")))
    with pytest.raises(ValueError, match="action limits lie outside"):
        NumberLimits(specification=Range(D("5"), D("10")), action=Range(D("4"), D("9")))


def test_open_ended_limits() -> None:
    assert judge(D("99"), NumberLimits(specification=Range(low=D("97")))).in_specification
    assert not judge(D("1.1"), NumberLimits(specification=Range(high=D("1.0")))).in_specification


@pytest.mark.req("S88-02", "P11-06")
def test_steps_are_ordered_after_their_predecessors_with_parallel_branches() -> None:
    preds = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}
    order = topological_order(preds)
    assert order.index("a") < order.index("b") < order.index("d")
    assert order.index("c") < order.index("d")
    assert ancestors("d", preds) == {"a", "b", "c"}


@pytest.mark.req("S88-02")
def test_a_cycle_is_named() -> None:
    with pytest.raises(CycleError) as e:
        topological_order({"a": ["c"], "b": ["a"], "c": ["b"]})
    assert "→" in str(e.value) and set(e.value.cycle) == {"a", "b", "c"}


def test_a_long_sequence_orders_without_trouble() -> None:
    preds = {f"s{i}": [f"s{i - 1}"] if i else [] for i in range(600)}
    assert topological_order(preds)[-1] == "s599"


@pytest.mark.req("S88-05", "MBR-01")
@pytest.mark.parametrize("table_name", ["RECIPE", "BATCH"])
def test_every_state_and_command_pair_is_decided(table_name: str) -> None:
    table = getattr(states, table_name)
    all_states = {s for t in table.values() for s in t.source} | {t.target for t in table.values()}
    for state in all_states:
        for command, transition in table.items():
            verdict = states.check(table, command, state, what="thing")
            assert verdict.allowed == (state in transition.source), (state, command)
            if not verdict.allowed:
                assert verdict.codes == ["ILLEGAL_TRANSITION"]
    assert states.check(table, "explode", "draft", what="thing").codes == ["UNKNOWN_COMMAND"]


def test_a_refused_transition_says_what_the_state_is_and_what_it_needs() -> None:
    (reason,) = states.check(states.BATCH, "resume", "running", what="batch").reasons
    assert reason.message == "The batch is running: 'resume' is possible only when it is held."
