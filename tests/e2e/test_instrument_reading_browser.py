"""An instrument-reading step on the execution screen: the operator sees the machine's current value,
takes the reading, types the other by hand with a reason and a second person, completes the step; the
record page shows where each value came from (issue 15), in headless Chromium."""

from __future__ import annotations

import pytest

from batchline.execution.models import StepValue
from tests.conftest import PASSWORD
from tests.e2e.test_browser import log_in
from tests.e2e.test_execution_browser import settle

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.req("IPC-04", "S95-06", "A11-08", "BR-01")
def test_an_operator_takes_a_reading_from_the_machine_and_types_one_with_a_witness(page, live_db) -> None:
    from tests.gateway.test_instrument_readings import make_lod_plant, stored

    _people, batch = make_lod_plant()
    stored("ns=2;s=LOD", 2.2)
    log_in(page, "operator")
    page.goto(f"/batches/{batch.number}/?step=lod")
    moisture = page.get_by_test_id("device-input-moisture")
    # The machine's current value, polled, before anything is recorded.
    moisture.get_by_test_id("live-value").wait_for()
    assert "2.2 %" in moisture.get_by_test_id("live-value").inner_text()
    assert "ns=2;s=LOD" in moisture.get_by_test_id("live").inner_text()
    # The inlet air: nothing read yet, and the screen says why it cannot be taken.
    inlet = page.get_by_test_id("device-input-inlet_final")
    inlet.get_by_test_id("live-problem").wait_for()
    assert "nothing was read from it" in inlet.get_by_test_id("live-problem").inner_text()

    settle(page)
    page.get_by_test_id("take-reading-moisture").click()
    page.get_by_test_id("values").wait_for()
    assert "2.2 %" in page.get_by_test_id("values").inner_text()
    assert page.get_by_test_id("device-input-moisture").count() == 0  # taken: no second "take"

    # The inlet sensor is out: typed by hand, with the reason and the supervisor's signature.
    settle(page)
    inlet = page.get_by_test_id("device-input-inlet_final")
    inlet.get_by_text("type it by hand").click()
    inlet.get_by_label("Final inlet air temperature (°C)").fill("61")
    inlet.get_by_label("Why the device was not used").fill("Inlet probe under repair (WO-1182)")
    inlet.get_by_test_id("enter-reading-inlet_final").click()
    page.get_by_test_id("refusal").wait_for()  # no second person yet: refused in words, nothing recorded
    assert "confirmed by a second person's signature" in page.get_by_test_id("refusal").inner_text()
    assert not StepValue.objects.filter(name="inlet_final").exists()
    settle(page)
    inlet = page.get_by_test_id("device-input-inlet_final")
    if not inlet.get_by_label("Why the device was not used").is_visible():
        inlet.get_by_text("type it by hand").click()
    inlet.get_by_label("Final inlet air temperature (°C)").fill("61")
    inlet.get_by_label("Why the device was not used").fill("Inlet probe under repair (WO-1182)")
    inlet.get_by_label("Second person's user ID").fill("supervisor")
    inlet.get_by_label("Their password").fill(PASSWORD)
    inlet.get_by_test_id("enter-reading-inlet_final").click()
    page.get_by_test_id("device-inputs").wait_for(state="detached")
    assert "61 °C" in page.get_by_test_id("values").inner_text()

    settle(page)
    page.get_by_role("button", name="Complete and sign…").click()
    page.fill("#sign-step-username", "operator")
    page.fill("#sign-step-password", PASSWORD)
    page.keyboard.press("Enter")
    page.locator("[data-step=lod] .step-state", has_text="complete").wait_for()

    values = {v.name: v for v in StepValue.objects.filter(step__batch=batch, step__key="lod")}
    assert (values["moisture"].source, values["inlet_final"].source) == ("device", "manual")

    page.goto(f"/batches/{batch.number}/record/")
    origins = page.get_by_test_id("origin").all_inner_texts()
    assert any(
        "read from FBD-01 (opcua opc.tcp://dryer-plc:4840 ns=2;s=LOD): 2.2 %, good" in o for o in origins
    )
    assert any(
        o.startswith(
            "MANUAL typed by hand in place of the device's reading, witnessed: Inlet probe under repair"
        )
        for o in origins
    )


@pytest.mark.req("S95-06", "BR-01", "DI-02")
def test_the_record_page_draws_a_monitored_values_course_with_its_limits(page, live_db, tmp_path) -> None:
    from batchline.gateway import store
    from batchline.gateway.live import LiveJudging
    from batchline.gateway.runner import Writer
    from batchline.gateway.selectors import connections
    from batchline.gateway.spool import Spool
    from tests.execution.test_engine import age, complete
    from tests.execution.test_monitoring import make_monitoring_plant
    from tests.gateway.test_trend import configure, readings

    people, batch = make_monitoring_plant()
    configure(people["engineer"], people["approver"])
    step = batch.steps.get(key="drying")
    age(step, 5)
    step.refresh_from_db()
    writer = Writer(
        spool=Spool(tmp_path / "s.sqlite3", max_rows=100),
        name="gw",
        stored_hook=LiveJudging(connections()).stored,
    )
    inlet = readings("ns=2;s=Inlet", [333.15, 334.15, 332.65, 335.15], step.started_at)
    air = readings("ns=2;s=Air", [1000.0, 1010.0, 990.0], step.started_at)
    writer.handle(store.rows_of(inlet + air), inlet + air)
    complete(people, batch, "drying")

    log_in(page, "operator")
    page.goto(f"/batches/{batch.number}/record/")
    figure = page.get_by_test_id("record-trend").filter(has_text="Inlet air temperature")
    figure.wait_for()
    assert figure.locator("svg polygon.trend-band").is_visible()
    assert figure.locator("svg .limit-specification").count() >= 2
    assert "4 usable of 4 readings" in figure.inner_text()
    box = figure.locator("svg").bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 50  # drawn, not collapsed
