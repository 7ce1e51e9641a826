"""Every gate on starting, completing and verifying a step, refused and allowed side by side."""

from __future__ import annotations

import datetime as dt

import pytest

from batchline.rules.gates import (
    AWAITING_VERIFICATION,
    DONE,
    PENDING,
    RUNNING,
    Actor,
    StepView,
    may_complete,
    may_start,
    may_verify,
    overran,
)

T0 = dt.datetime(2026, 11, 24, 14, 0, tzinfo=dt.UTC)
OPERATOR = Actor(id=1, roles=frozenset({"operator"}))
OTHER_OPERATOR = Actor(id=2, roles=frozenset({"operator"}))
SUPERVISOR = Actor(id=3, roles=frozenset({"supervisor"}), can_verify=True)


def step(key: str = "s2", state: str = PENDING, **kw) -> StepView:
    return StepView(
        key=key, title=kw.pop("title", "Dry mix"), state=state, role=kw.pop("role", "operator"), **kw
    )


def steps(first_state: str) -> dict[str, StepView]:
    return {"s1": step("s1", first_state, title="Dispense"), "s2": step("s2", predecessors=("s1",))}


@pytest.mark.req("P11-06")
def test_a_step_starts_only_after_its_predecessors() -> None:
    assert may_start(steps(DONE)["s2"], steps(DONE), OPERATOR, batch_state="running").allowed
    refused = may_start(steps(RUNNING)["s2"], steps(RUNNING), OPERATOR, batch_state="running")
    assert refused.codes == ["PREDECESSOR_OPEN"]
    assert refused.reasons[0].message == "Step “Dry mix” cannot start before “Dispense” is complete."


@pytest.mark.req("P11-07")
def test_a_step_needs_its_role() -> None:
    s = {"s1": step("s1", role="supervisor")}
    assert may_start(s["s1"], s, SUPERVISOR, batch_state="running").allowed
    assert may_start(s["s1"], s, OPERATOR, batch_state="running").codes == ["ROLE_REQUIRED"]


@pytest.mark.parametrize(
    ("batch_state", "allowed"),
    [
        ("released", True),
        ("running", True),
        ("created", False),
        ("held", False),
        ("complete", False),
        ("aborted", False),
    ],
)
def test_work_happens_only_on_a_released_or_running_batch(batch_state: str, allowed: bool) -> None:
    s = {"s1": step("s1")}
    assert may_start(s["s1"], s, OPERATOR, batch_state=batch_state).allowed == allowed


def test_a_started_step_cannot_start_again() -> None:
    s = {"s1": step("s1", RUNNING)}
    assert may_start(s["s1"], s, OPERATOR, batch_state="running").codes == ["STEP_ALREADY_STARTED"]


@pytest.mark.req("IPC-05")
def test_a_hold_step_completes_only_after_its_minimum_time() -> None:
    s = step(state=RUNNING, min_seconds=600, started_at=T0)
    early = may_complete(s, OPERATOR, batch_state="running", now=T0 + dt.timedelta(seconds=599))
    assert early.codes == ["TIMER_MINIMUM"] and "0 s to go" not in early.reasons[0].message
    assert "1 s to go" in early.reasons[0].message
    assert may_complete(s, OPERATOR, batch_state="running", now=T0 + dt.timedelta(seconds=600)).allowed


@pytest.mark.req("IPC-05")
def test_running_past_the_maximum_is_measured_not_refused() -> None:
    s = step(state=RUNNING, max_seconds=300, started_at=T0)
    assert overran(s, now=T0 + dt.timedelta(seconds=300)) is None
    assert overran(s, now=T0 + dt.timedelta(seconds=420)) == 120
    assert may_complete(s, OPERATOR, batch_state="running", now=T0 + dt.timedelta(seconds=420)).allowed


def test_completion_needs_the_values_and_the_signature() -> None:
    s = step(state=RUNNING, performer_signs=True)
    v = may_complete(s, OPERATOR, batch_state="running", now=T0, missing_inputs=["Impeller power"])
    assert v.codes == ["VALUE_MISSING", "SIGNATURE_REQUIRED"]
    assert may_complete(s, OPERATOR, batch_state="running", now=T0, signed=True).allowed


@pytest.mark.parametrize(
    ("state", "code"),
    [
        (PENDING, "STEP_NOT_STARTED"),
        (DONE, "STEP_ALREADY_COMPLETE"),
        (AWAITING_VERIFICATION, "STEP_ALREADY_COMPLETE"),
    ],
)
def test_only_a_running_step_completes(state: str, code: str) -> None:
    assert may_complete(step(state=state), OPERATOR, batch_state="running", now=T0).codes == [code]


@pytest.mark.req("DV-01", "WD-08")
def test_the_verifier_is_not_the_performer() -> None:
    s = step(state=AWAITING_VERIFICATION, performed_by=SUPERVISOR.id)
    assert may_verify(s, SUPERVISOR, batch_state="running").codes == ["VERIFIER_IS_PERFORMER"]
    s = step(state=AWAITING_VERIFICATION, performed_by=OPERATOR.id)
    assert may_verify(s, SUPERVISOR, batch_state="running").allowed
    assert may_verify(s, OTHER_OPERATOR, batch_state="running").codes == ["NOT_A_VERIFIER"]


def test_only_a_step_waiting_for_it_is_verified() -> None:
    assert may_verify(step(state=RUNNING), SUPERVISOR, batch_state="running").codes == ["NOTHING_TO_VERIFY"]
