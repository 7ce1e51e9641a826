"""Process alarms from the machine's values: levels, minimum duration, deadband, loss of signal."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest

from batchline.rules.alarms import AlarmJudge, AlarmLimits, Event, Level
from batchline.rules.limits import Range

T0 = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)
# A dryer's inlet air: alarm outside 55–65 °C, out of specification outside 50–70 °C.
INLET = AlarmLimits(
    action=Range(D(55), D(65)),
    specification=Range(D(50), D(70)),
    deadband=D("0.5"),
    min_duration=dt.timedelta(seconds=10),
    signal_timeout=dt.timedelta(seconds=30),
)


def feed(judge: AlarmJudge, *values: str | None, every: int = 5) -> list[tuple[str, str, int, str | None]]:
    """Values every ``every`` seconds from T0; the events as (event, level, second, value)."""
    out = []
    for i, v in enumerate(values):
        at = T0 + dt.timedelta(seconds=i * every)
        for j in judge.value(at, None if v is None else D(v), usable=v is not None):
            out.append(
                (
                    j.event.value,
                    j.level.words,
                    int((j.at - T0).total_seconds()),
                    None if j.value is None else str(j.value),
                )
            )
    return out


@pytest.mark.req("IPC-01", "S95-06")
def test_a_value_must_stay_out_for_the_minimum_duration_and_the_alarm_dates_from_its_first_value() -> None:
    judge = AlarmJudge(INLET)
    # 66 at 5 s is a spike (back at 10 s); 66.5 from 20 s holds past 10 s: raised at 20 s.
    events = feed(judge, "60", "66", "60", "60", "66.5", "67", "66.2")
    assert events == [("raised", "high", 20, "66.5")]
    assert judge.level == Level.HIGH


@pytest.mark.req("IPC-01", "S95-06")
def test_the_deadband_stops_chatter_on_a_limit_and_a_worse_level_escalates() -> None:
    judge = AlarmJudge(INLET)
    events = feed(
        judge,
        "66", "66", "66",  # raised high at 0 s (held 10 s)
        "64.8", "65.2", "64.9",  # inside the limit but not by the deadband: still high
        "71", "71.5", "72",  # beyond the specification for 10 s: high-high from 30 s
        "69.8", "68",  # below 70 but within 0.5: still high-high; 68 eases to high at once
        "64",  # back inside by the deadband: cleared
    )  # fmt: skip
    assert events == [
        ("raised", "high", 0, "66"),
        ("changed", "high-high", 30, "71"),
        ("changed", "high", 50, "68"),
        ("cleared", "high", 55, "64"),
    ]


@pytest.mark.req("IPC-01", "S95-06")
def test_crossing_to_the_other_side_is_a_new_alarm_and_the_extreme_is_kept() -> None:
    judge = AlarmJudge(INLET)
    events = feed(judge, "54", "53", "52", "56", "66", "69", "68")
    assert events[0] == ("raised", "low", 0, "54")
    assert ("cleared", "low", 15, "56") in events
    assert events[-1] == ("raised", "high", 20, "66")
    # the extreme while it was pending is what the record shows beside the first value
    judge2 = AlarmJudge(INLET)
    judged = [
        j
        for i, v in enumerate(["71", "73", "72"])
        for j in judge2.value(T0 + dt.timedelta(seconds=5 * i), D(v))
    ]
    assert [(j.event, j.level, j.value, j.extreme, j.limit) for j in judged] == [
        (Event.RAISED, Level.HIGH_HIGH, D(71), D(73), D(70))
    ]


@pytest.mark.req("S95-06", "DI-05")
def test_a_bad_value_is_a_loss_of_signal_never_a_value_and_silence_is_one_too() -> None:
    judge = AlarmJudge(INLET)
    events = feed(judge, "60", None, None, "66", "66", "66")
    assert events[:2] == [("signal lost", "in range", 5, None), ("signal back", "in range", 15, "66")]
    assert events[2] == ("raised", "high", 15, "66")
    # A bad value breaks a pending alarm: the minimum duration counts usable values only.
    judge = AlarmJudge(INLET)
    assert feed(judge, "66", None, "66", "66") == [
        ("signal lost", "in range", 5, None),
        ("signal back", "in range", 10, "66"),
    ]
    assert judge.level == Level.NORMAL
    # Silence: nothing for the signal timeout is a loss, dated at the timeout, said once.
    judge = AlarmJudge(INLET)
    judge.value(T0, D(60))
    assert judge.silence(T0 + dt.timedelta(seconds=29)) == []
    (lost,) = judge.silence(T0 + dt.timedelta(seconds=45))
    assert (lost.event, lost.at) == (Event.SIGNAL_LOST, T0 + dt.timedelta(seconds=30))
    assert judge.silence(T0 + dt.timedelta(seconds=90)) == []


@pytest.mark.req("S95-06")
def test_uncertain_values_are_judged_and_marked_and_order_is_required() -> None:
    judge = AlarmJudge(INLET)
    judge.value(T0, D(71), uncertain=True)
    (raised,) = judge.value(T0 + dt.timedelta(seconds=10), D(71))
    assert raised.uncertain and raised.level == Level.HIGH_HIGH
    with pytest.raises(ValueError, match="time order"):
        judge.value(T0, D(60))


@pytest.mark.req("IPC-01")
def test_limits_that_make_no_sense_are_refused() -> None:
    with pytest.raises(ValueError, match="action limits lie outside"):
        AlarmLimits(action=Range(D(40), D(65)), specification=Range(D(50), D(70)))
    with pytest.raises(ValueError, match="deadband"):
        AlarmLimits(deadband=D(-1))
    # Only a specification: beyond it is high-high at once (no duration asked).
    judge = AlarmJudge(AlarmLimits(specification=Range(high=D(10))))
    (raised,) = judge.value(T0, D("10.1"))
    assert (raised.event, raised.level) == (Event.RAISED, Level.HIGH_HIGH)
    (cleared,) = judge.value(T0, D(10))  # the limit itself is inside
    assert (cleared.event, judge.level) == (Event.CLEARED, Level.NORMAL)
