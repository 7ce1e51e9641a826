"""The gateway's judge between the readings and the batch: which reading is judged, in which unit, for
which step, and what a machine's own state does to its unit (issue 15)."""

from __future__ import annotations

import datetime as dt

import pytest

from batchline.equipment.models import Equipment
from batchline.execution.models import BatchException, ProcessAlarm
from batchline.gateway.judging import Judging
from batchline.gateway.readings import Protocol, Quality, Reading, Source
from tests.execution.test_monitoring import plant  # noqa: F401 (the fixture)

pytestmark = pytest.mark.django_db
OPC = "opc.tcp://127.0.0.1:4840"


def reading(
    tag: str, value: float | None, at: dt.datetime, quality: Quality = Quality.GOOD, **kw: object
) -> Reading:
    return Reading(
        Source("FBD-01", Protocol.OPCUA, OPC, tag),
        value,
        quality,
        at,
        at + dt.timedelta(milliseconds=20),
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.req("S95-06", "IPC-01")
def test_readings_of_a_running_steps_unit_are_judged_in_the_recipes_unit_and_nothing_else_is(plant) -> None:  # noqa: F811
    _people, batch = plant
    judging = Judging()
    judging.refresh()
    assert judging.watching == 2
    t = batch.steps.get(key="drying").started_at
    sec = dt.timedelta(seconds=1)
    # Before the step started, historical, or of another unit: stored by the gateway, never judged.
    assert judging.reading(reading("ns=2;s=Inlet", 90.0, t - sec), "inlet_temp", "°C") == []
    assert judging.reading(reading("ns=2;s=Inlet", 90.0, t + sec, historical=True), "inlet_temp", "°C") == []
    other = Reading(Source("FBD-02", Protocol.OPCUA, OPC, "x"), 90.0, Quality.GOOD, t + sec, t + sec)
    assert judging.reading(other, "inlet_temp", "°C") == []
    # In kelvin from the device, judged in °C: 345.15 K is 72 °C, beyond 70 °C for the 10 s asked.
    said = []
    for i, kelvin in enumerate([333.15, 345.15, 345.15, 345.15]):
        said += judging.reading(reading("ns=2;s=Inlet", kelvin, t + (i * 5 + 1) * sec), "inlet_temp", "K")
    assert [(j.event.value, j.level.words, j.value) for j in said] == [("raised", "high-high", 72)]
    (alarm,) = ProcessAlarm.objects.filter(step__batch=batch)
    assert (alarm.tag, alarm.equipment, alarm.exception.code) == (
        "ns=2;s=Inlet",
        "FBD-01",
        "CRITICAL_OUT_OF_SPECIFICATION",
    )
    # A value older than the last one judged (late) is not judged again.
    assert judging.reading(reading("ns=2;s=Inlet", 20.0, t + 2 * sec), "inlet_temp", "°C") == []


@pytest.mark.req("S95-06", "DI-05")
def test_a_bad_value_and_silence_are_losses_of_signal_and_a_new_judge_per_step(plant) -> None:  # noqa: F811
    _people, batch = plant
    judging = Judging()
    judging.refresh()
    t = batch.steps.get(key="drying").started_at
    sec = dt.timedelta(seconds=1)
    judging.reading(reading("ns=2;s=Air", 1000.0, t + sec), "airflow", "m**3/h")
    (lost,) = judging.reading(
        reading("ns=2;s=Air", None, t + 2 * sec, Quality.BAD, status="BadSensorFailure"), "airflow"
    )
    assert lost.event.value == "signal lost"
    judging.reading(reading("ns=2;s=Inlet", 60.0, t + sec), "inlet_temp", "°C")
    # Nothing from the inlet sensor for its 30 s timeout: a critical loss, the batch stopped.
    (silent,) = judging.silence(t + 40 * sec)
    assert silent.at == t + 31 * sec
    codes = sorted(BatchException.objects.filter(batch=batch).values_list("code", flat=True))
    assert codes == ["CRITICAL_SIGNAL_LOST", "SIGNAL_LOST"]
    judging.refresh()  # the same steps run: the judges keep their state (no second loss)
    assert judging.silence(t + 80 * sec) == []


@pytest.mark.req("EQ-01", "S95-06")
def test_a_units_packml_state_and_mode_reach_its_claim_gate_and_a_stale_one_is_unknown(plant) -> None:  # noqa: F811
    judging = Judging()
    now = dt.datetime.now(dt.UTC)
    judging.reading(reading("ns=2;s=State", 11, now), "packml_state")
    judging.reading(reading("ns=2;s=Mode", 1, now), "packml_mode")
    unit = Equipment.objects.get(code="FBD-01")
    assert (unit.machine_state, unit.machine_mode, unit.machine_known) == (11, 1, True)
    judging.reading(
        reading("ns=2;s=State", None, now + dt.timedelta(seconds=1), Quality.STALE), "packml_state"
    )
    unit.refresh_from_db()
    assert (unit.machine_state, unit.machine_known) == (11, False)  # the last report kept, marked unknown
