"""An operator sees the machine's process alarms on the step, acknowledges each with what was done, and
the step completes once all are acknowledged, in headless Chromium (issue 15)."""

from __future__ import annotations

import datetime as dt

import pytest

from batchline.execution.models import ProcessAlarm
from batchline.gateway.judging import Judging
from batchline.gateway.readings import Protocol, Quality, Reading, Source
from tests.e2e.test_browser import log_in
from tests.e2e.test_execution_browser import settle

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.req("S95-06", "DEV-01", "DI-01")
def test_an_operator_acknowledges_the_machines_alarm_and_then_completes_the_step(page, live_db) -> None:
    from tests.execution.test_monitoring import make_monitoring_plant

    _people, batch = make_monitoring_plant()
    log_in(page, "operator")
    page.goto(f"/batches/{batch.number}/?step=drying")
    page.get_by_test_id("no-alarms").wait_for()
    assert page.get_by_test_id("monitor").count() == 2
    inlet = page.get_by_test_id("monitor").filter(has_text="Inlet air temperature").inner_text()
    assert "specification 50–70 °C · action range 55–65 °C · read from FBD-01" in inlet

    # The gateway reads the dryer's air flow above its action range (a non-critical parameter).
    judging = Judging()
    judging.refresh()
    t = batch.steps.get(key="drying").started_at
    for i, flow in enumerate([1000.0, 1350.0]):
        at = t + dt.timedelta(seconds=i + 1)
        source = Source("FBD-01", Protocol.OPCUA, "opc.tcp://plc:4840", "ns=2;s=FBD01.AirFlow")
        judging.reading(Reading(source, flow, Quality.GOOD, at, at), "airflow", "m**3/h")
    inlet = Source("FBD-01", Protocol.OPCUA, "opc.tcp://plc:4840", "ns=2;s=FBD01.Inlet")
    judging.reading(Reading(inlet, 60.0, Quality.GOOD, t + dt.timedelta(seconds=1), t), "inlet_temp", "°C")

    page.reload()
    alarm = page.get_by_test_id("alarm").filter(has_text="raised")
    assert "Air flow: raised (high) at 1350 m**3/h" in alarm.inner_text()
    page.get_by_test_id("complete").click()
    page.get_by_test_id("refusal").wait_for()
    assert "Acknowledge the process alarms of Air flow first" in page.get_by_test_id("refusal").inner_text()

    settle(page)
    page.locator("[data-testid=alarm] input[name=comment]").fill(
        "Filter bag changed; flow back at 1,000 m³/h."
    )
    page.get_by_test_id("acknowledge").click()
    page.get_by_test_id("alarm-acknowledged").wait_for()
    assert "acknowledged by Operator Person" in page.get_by_test_id("alarm-acknowledged").inner_text()
    acknowledged = ProcessAlarm.objects.get(step__batch=batch, needs_acknowledgement=True)
    assert acknowledged.acknowledged_by.username == "operator"
    assert acknowledged.comment == "Filter bag changed; flow back at 1,000 m³/h."

    settle(page)
    page.get_by_test_id("complete").click()
    page.locator("[data-step=drying].state-done").wait_for()
