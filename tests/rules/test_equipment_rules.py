"""Equipment gates and hold times without a database, each at its boundary (T − 1 s, T, T + 1 s)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from batchline.rules import equipment as eq

ZURICH = ZoneInfo("Europe/Zurich")
T = dt.datetime(2026, 3, 3, 5, 10, tzinfo=dt.UTC)  # 06:10 in Zurich
SECOND = dt.timedelta(seconds=1)
AROUND = pytest.mark.parametrize(
    ("offset", "refused"),
    [(-SECOND, False), (dt.timedelta(0), True), (SECOND, True)],
    ids=["T-1s", "T", "T+1s"],
)

GRANULATOR = eq.EquipmentClassView(
    code="granulator",
    name="High-shear granulator",
    dirty_hold=dt.timedelta(hours=72),
    clean_hold=dt.timedelta(hours=72),
)
SCALE = eq.EquipmentClassView(code="scale", name="Scale", is_scale=True)


def unit(**kw) -> eq.EquipmentView:
    """A clean granulator, cleaned an hour before T, calibrated and maintained for a month."""
    values = {
        "code": "GRAN-01",
        "name": "Granulator",
        "equipment_class": GRANULATOR,
        "status": eq.CLEAN,
        "cleaned_at": T - dt.timedelta(hours=1),
        "calibration_due_at": T + dt.timedelta(days=30),
        "maintenance_due_at": T + dt.timedelta(days=30),
    }
    return eq.EquipmentView(**(values | kw))


def scale(**kw) -> eq.EquipmentView:
    values = {
        "code": "SCALE-01",
        "name": "Bench scale",
        "equipment_class": SCALE,
        "status": eq.CLEAN,
        "cleaned_at": T - dt.timedelta(hours=1),
        "capacity": Decimal("6200"),
        "minimum_weight": Decimal("0.5"),
        "unit": "g",
        "last_check_at": T - dt.timedelta(minutes=30),
        "last_check_passed": True,
        "calibration_due_at": T + dt.timedelta(days=30),
    }
    return eq.EquipmentView(**(values | kw))


def codes(verdict) -> list[str]:
    return verdict.codes


@pytest.mark.req("EQ-01")
def test_clean_calibrated_equipment_may_be_used() -> None:
    assert eq.may_use(unit(), T, "B-1").allowed
    assert eq.may_use(unit(), T, "B-1", required_class="granulator").allowed


# --- clean hold (EQ-02) ---------------------------------------------------------------


@pytest.mark.req("EQ-02")
@AROUND
def test_the_clean_hold_ends_at_its_instant(offset, refused) -> None:
    view = unit(cleaned_at=T - dt.timedelta(hours=72))  # the hold ends at T
    verdict = eq.may_use(view, T + offset, "B-1")
    assert codes(verdict) == (["CLEAN_HOLD_EXPIRED"] if refused else [])
    condition = eq.effective_status(view, T + offset)
    assert condition.status == (eq.CLEAN_HOLD_EXPIRED if refused else eq.CLEAN)
    assert condition.clean_until == T


@pytest.mark.req("EQ-02", "A11-05")
def test_an_expired_clean_hold_is_told_with_the_times() -> None:
    view = unit(cleaned_at=dt.datetime(2026, 2, 28, 5, 10, tzinfo=dt.UTC))
    (reason,) = eq.may_use(view, dt.datetime(2026, 3, 4, 9, 0, tzinfo=dt.UTC), "B-1", tz=ZURICH).reasons
    assert reason.message == (
        "Granulator GRAN-01 was cleaned at 06:10 CET on 28 February; its clean hold of 72 h ended at "
        "06:10 CET on 3 March: clean it again."
    )


def test_a_clean_unit_without_a_recorded_cleaning_needs_one() -> None:
    view = unit(cleaned_at=None)
    assert codes(eq.may_use(view, T, "B-1")) == ["CLEAN_HOLD_EXPIRED"]
    assert eq.effective_status(view, T).status == eq.CLEAN_HOLD_EXPIRED


def test_a_class_without_a_clean_hold_stays_clean() -> None:
    view = unit(
        equipment_class=dataclasses.replace(GRANULATOR, clean_hold=None),
        cleaned_at=T - dt.timedelta(days=400),
    )
    assert eq.may_use(view, T, "B-1").allowed and eq.effective_status(view, T).status == eq.CLEAN


# --- dirty hold -------------------------------------------------------------------------


@pytest.mark.req("EQ-02")
@AROUND
def test_the_dirty_hold_is_exceeded_at_its_instant(offset, refused) -> None:
    view = unit(
        status=eq.DIRTY, cleaned_at=T - dt.timedelta(hours=80), last_used_end=T - dt.timedelta(hours=72)
    )
    condition = eq.effective_status(view, T + offset)
    assert condition.status == (eq.DIRTY_HOLD_EXCEEDED if refused else eq.DIRTY)
    assert condition.dirty_hold_until == T
    assert eq.dirty_hold_exceeded(view, T + offset) is refused
    (reason,) = eq.may_use(view, T + offset, "B-1").reasons
    assert reason.code == "EQUIPMENT_DIRTY"
    assert ("dirty hold of 72 h ended" in reason.message) is refused


def test_dirty_equipment_is_refused_with_when_it_was_used() -> None:
    view = unit(status=eq.DIRTY, last_used_end=T - dt.timedelta(hours=1))
    (reason,) = eq.may_use(view, T, "B-1", tz=ZURICH).reasons
    assert reason.message == "Granulator GRAN-01 was used until 05:10 CET and is dirty: clean it before use."


def test_a_unit_cleaned_after_its_last_use_carries_no_dirty_hold() -> None:
    view = unit(status=eq.DIRTY, last_used_end=T - dt.timedelta(days=9), cleaned_at=T - dt.timedelta(days=8))
    assert eq.dirty_hold_until(view) is None and eq.effective_status(view, T).status == eq.DIRTY


# --- status -------------------------------------------------------------------------------


@pytest.mark.req("EQ-01")
@pytest.mark.parametrize(
    ("status", "code"),
    [
        (eq.CLEANING, "CLEANING_IN_PROGRESS"),
        (eq.MAINTENANCE, "IN_MAINTENANCE"),
        (eq.OUT_OF_SERVICE, "OUT_OF_SERVICE"),
        (eq.DIRTY, "EQUIPMENT_DIRTY"),
        ("melted", "UNKNOWN_STATUS"),
    ],
)
def test_each_status_that_forbids_use_says_so(status: str, code: str) -> None:
    assert codes(eq.may_use(unit(status=status, status_reason="seal leaks"), T, "B-1")) == [code]


def test_out_of_service_names_the_reason() -> None:
    (reason,) = eq.may_use(unit(status=eq.OUT_OF_SERVICE, status_reason="seal leaks"), T, "B-1").reasons
    assert "out of service (seal leaks)" in reason.message


@pytest.mark.req("EQ-01")
def test_equipment_in_use_by_another_batch_is_busy_but_the_same_batch_may_scan_it_again() -> None:
    view = unit(status=eq.IN_USE, current_batch="B-1", in_use_since=T - dt.timedelta(minutes=20))
    assert eq.may_use(view, T, "B-1").allowed
    (reason,) = eq.may_use(view, T, "B-2", tz=ZURICH).reasons
    assert reason.code == "EQUIPMENT_BUSY"
    assert "in use by batch B-1 since 05:50 CET" in reason.message


@pytest.mark.req("EQ-01", "EQ-05")
def test_the_wrong_kind_of_equipment_is_refused_alone() -> None:
    view = unit(status=eq.DIRTY)
    (reason,) = eq.may_use(view, T, "B-1", required_class="tablet_press").reasons
    assert reason.code == "WRONG_EQUIPMENT_CLASS"
    assert "needs a tablet_press: scan the right equipment" in reason.message


# --- calibration and maintenance (EQ-04) --------------------------------------------------


@pytest.mark.req("EQ-04", "EQ-01")
@AROUND
def test_calibration_is_overdue_at_its_due_instant(offset, refused) -> None:
    view = unit(calibration_due_at=T)
    assert codes(eq.may_use(view, T + offset, "B-1")) == (["CALIBRATION_OVERDUE"] if refused else [])
    assert eq.effective_status(view, T + offset).calibration == (eq.DUE_OVERDUE if refused else eq.DUE_SOON)


@pytest.mark.req("EQ-04")
@AROUND
def test_maintenance_is_overdue_at_its_due_instant(offset, refused) -> None:
    view = unit(maintenance_due_at=T)
    assert codes(eq.may_use(view, T + offset, "B-1")) == (["MAINTENANCE_OVERDUE"] if refused else [])
    assert eq.effective_status(view, T + offset).maintenance == (eq.DUE_OVERDUE if refused else eq.DUE_SOON)


def test_every_reason_is_given_at_once() -> None:
    view = unit(status=eq.DIRTY, calibration_due_at=T, maintenance_due_at=T)
    assert codes(eq.may_use(view, T, "B-1")) == [
        "EQUIPMENT_DIRTY",
        "CALIBRATION_OVERDUE",
        "MAINTENANCE_OVERDUE",
    ]


@pytest.mark.parametrize(
    ("due", "state"),
    [(None, eq.DUE_NONE), (T + dt.timedelta(days=8), eq.DUE_VALID), (T + dt.timedelta(days=7), eq.DUE_SOON)],
)
def test_due_dates_read_valid_soon_or_none(due, state) -> None:
    assert eq.due_state(due, T) == state


# --- scales (WD-02) ------------------------------------------------------------------------


@pytest.mark.req("WD-02")
def test_a_checked_calibrated_scale_fits_a_target_within_its_range() -> None:
    assert eq.scale_fits(scale(), T, Decimal("500"), "g").allowed


@pytest.mark.req("WD-02", "EQ-04")
@AROUND
def test_a_scale_past_its_calibration_is_refused(offset, refused) -> None:
    verdict = eq.scale_fits(scale(calibration_due_at=T), T + offset, Decimal("500"), "g")
    assert codes(verdict) == (["CALIBRATION_OVERDUE"] if refused else [])


@pytest.mark.req("WD-02")
@AROUND
def test_yesterdays_check_does_not_count_from_midnight(offset, refused) -> None:
    midnight = dt.datetime(2026, 3, 4, tzinfo=ZURICH)  # 23:00 UTC on 3 March
    view = scale(
        last_check_at=midnight - dt.timedelta(hours=10), calibration_due_at=midnight + dt.timedelta(days=9)
    )
    verdict = eq.scale_fits(view, midnight + offset, Decimal("500"), "g", tz=ZURICH)
    assert codes(verdict) == (["DAILY_CHECK_MISSING"] if refused else [])


@pytest.mark.req("WD-02")
@pytest.mark.parametrize(
    ("offset", "refused"),
    [(-SECOND, True), (dt.timedelta(0), False), (SECOND, False)],
    ids=["T-1s", "T", "T+1s"],
)
def test_a_check_made_from_midnight_on_counts_for_the_day(offset, refused) -> None:
    midnight = dt.datetime(2026, 3, 4, tzinfo=ZURICH)
    view = scale(last_check_at=midnight + offset, calibration_due_at=midnight + dt.timedelta(days=9))
    verdict = eq.scale_fits(view, midnight + dt.timedelta(hours=7), Decimal("500"), "g", tz=ZURICH)
    assert codes(verdict) == (["DAILY_CHECK_MISSING"] if refused else [])
    if refused:
        assert verdict.reasons[0].message == (
            "Bench scale SCALE-01 has not had today's check; the last was at 23:59 CET on 3 March: "
            "check it before weighing."
        )


@pytest.mark.req("WD-02")
def test_a_scale_never_checked_or_failed_today_is_refused() -> None:
    assert codes(eq.scale_fits(scale(last_check_at=None), T, Decimal(1), "g")) == ["DAILY_CHECK_MISSING"]
    failed = scale(last_check_passed=False)
    assert codes(eq.scale_fits(failed, T, Decimal(1), "g")) == ["DAILY_CHECK_FAILED"]


@pytest.mark.req("WD-02")
@pytest.mark.parametrize(
    ("target", "code"),
    [("6199.999", None), ("6200", None), ("6200.001", "CAPACITY_EXCEEDED")],
)
def test_a_target_over_the_capacity_is_refused(target, code) -> None:
    verdict = eq.scale_fits(scale(), T, Decimal(target), "g")
    assert codes(verdict) == ([code] if code else [])


@pytest.mark.req("WD-02")
@pytest.mark.parametrize(
    ("target", "code"),
    [("0.499", "BELOW_MINIMUM_WEIGHT"), ("0.5", None), ("0.501", None)],
)
def test_a_target_under_the_minimum_weight_is_refused(target, code) -> None:
    verdict = eq.scale_fits(scale(), T, Decimal(target), "g")
    assert codes(verdict) == ([code] if code else [])
    if code:
        assert verdict.reasons[0].message == (
            "Bench scale SCALE-01 has a minimum weight of 0.5 g; 0.499 g is less and would not be "
            "weighed accurately: use a finer scale."
        )


@pytest.mark.req("WD-02")
def test_a_target_in_a_unit_the_scale_cannot_weigh_is_refused() -> None:
    (reason,) = eq.scale_fits(scale(), T, None, "L").reasons
    assert reason.code == "WRONG_UNIT" and "weighs in g; a quantity in L" in reason.message


def test_only_a_scale_weighs_and_one_out_of_service_does_not() -> None:
    assert codes(eq.scale_fits(unit(), T, Decimal(1), "g")) == ["NOT_A_SCALE"]
    assert codes(eq.scale_fits(scale(status=eq.OUT_OF_SERVICE), T, Decimal(1), "g")) == ["OUT_OF_SERVICE"]
    assert codes(eq.scale_fits(scale(status=eq.MAINTENANCE), T, Decimal(1), "g")) == ["IN_MAINTENANCE"]


# --- status transitions ---------------------------------------------------------------------


ALLOWED = {
    ("claim", eq.CLEAN),
    ("release", eq.IN_USE),
    ("cleaning_start", eq.DIRTY),
    ("cleaning_start", eq.CLEAN),
    ("cleaning_end", eq.CLEANING),
    ("maintenance_start", eq.CLEAN),
    ("maintenance_start", eq.DIRTY),
    ("maintenance_start", eq.OUT_OF_SERVICE),
    ("maintenance_end", eq.MAINTENANCE),
    ("take_out_of_service", eq.CLEAN),
    ("take_out_of_service", eq.DIRTY),
    ("take_out_of_service", eq.CLEANING),
    ("take_out_of_service", eq.MAINTENANCE),
    ("return_to_service", eq.OUT_OF_SERVICE),
}


@pytest.mark.req("EQ-01")
@pytest.mark.parametrize("command", sorted(eq.TRANSITIONS))
@pytest.mark.parametrize("status", eq.STATUSES)
def test_every_status_and_command_pair_is_allowed_or_refused_as_the_table_says(command, status) -> None:
    verdict = eq.may_transition(unit(status=status), command)
    assert verdict.allowed is ((command, status) in ALLOWED)
    if not verdict.allowed:
        assert (
            verdict.codes == ["ILLEGAL_TRANSITION"] and "Granulator GRAN-01 is" in verdict.reasons[0].message
        )


def test_an_unknown_command_is_refused() -> None:
    assert eq.may_transition(unit(), "polish").codes == ["UNKNOWN_COMMAND"]


def test_times_and_holds_read_as_people_write_them() -> None:
    assert eq.span(dt.timedelta(hours=72)) == "72 h"
    assert eq.span(dt.timedelta(days=7)) == "7 days"
    assert eq.span(dt.timedelta(minutes=90)) == "90 min"
    assert eq.at(T, T, ZURICH) == "06:10 CET"
    assert eq.at(T - dt.timedelta(days=400), T, ZURICH) == "06:10 CET on 27 January 2025"


# --- what the machine reports of itself (PackML through the gateway) -------------------------


@pytest.mark.req("EQ-01", "S95-06")
@pytest.mark.parametrize(
    ("state", "mode", "code", "words"),
    [
        (11, 1, "MACHINE_NOT_READY", "Granulator GRAN-01 reports Held, Production mode (reported 06:09 CET)"),
        (9, 1, "MACHINE_NOT_READY", "reports Aborted, Production mode"),
        (8, None, "MACHINE_NOT_READY", "reports Aborting ("),
        (10, 1, "MACHINE_NOT_READY", "reports Holding"),
        (1, 1, "MACHINE_NOT_READY", "reports Clearing"),
        (0, 1, "MACHINE_NOT_READY", "reports Undefined"),
        (42, 1, "MACHINE_NOT_READY", "reports state 42"),
        (4, 2, "MACHINE_IN_MAINTENANCE", "reports Maintenance mode"),
    ],
)
def test_a_unit_its_plc_reports_held_aborted_or_in_maintenance_cannot_be_claimed(
    state: int, mode: int | None, code: str, words: str
) -> None:
    from batchline.rules.packml import MachineState

    machine = MachineState(state=state, mode=mode, at=T - dt.timedelta(minutes=1))
    verdict = eq.may_use(unit(machine=machine), T, "B-1", tz=ZURICH)
    assert codes(verdict) == [code]
    assert words in verdict.reasons[0].message


@pytest.mark.req("EQ-01", "S95-06")
def test_a_ready_machine_passes_and_one_whose_state_is_unknown_does_not() -> None:
    from batchline.rules.packml import MachineState

    for state in (2, 4, 5, 6, 17):  # stopped, idle, suspended, execute, complete
        assert eq.may_use(unit(machine=MachineState(state=state, mode=1)), T, "B-1").allowed
    assert eq.may_use(
        unit(machine=MachineState(state=4, mode=3)), T, "B-1"
    ).allowed  # manual: operated by hand
    assert eq.may_use(unit(machine=None), T, "B-1").allowed  # a unit that reports nothing has no such gate
    stale = MachineState(state=4, mode=1, at=T - dt.timedelta(hours=2), known=False)
    verdict = eq.may_use(unit(machine=stale), T, "B-1", tz=ZURICH)
    assert codes(verdict) == ["MACHINE_STATE_UNKNOWN"]
    assert "does not report its state now; last reported: Idle, Production mode (reported 04:10 CET)" in (
        verdict.reasons[0].message
    )
    # Batchline's own status and the machine's both count: every reason at once.
    both = eq.may_use(unit(status=eq.DIRTY, machine=MachineState(state=11, mode=1)), T, "B-1")
    assert codes(both) == ["EQUIPMENT_DIRTY", "MACHINE_NOT_READY"]
