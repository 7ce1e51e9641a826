"""An engineer reads the equipment gateway's page in headless Chromium while a real gateway reads the
plant simulator over OPC UA: connections, last values with quality, a sensor fault, the stale count."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import transaction

from batchline.audit.services import Actor, record_create
from batchline.equipment import services as eq
from batchline.equipment.models import Site
from batchline.gateway import demo, selectors
from batchline.gateway.models import StoredReading
from batchline.gateway.runner import Gateway
from batchline.gateway.spool import Spool
from tests.conftest import make_user
from tests.e2e.test_browser import log_in
from tests.gateway.conftest import sign
from tests.gateway.test_gateway import Running, Simulator, until

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SETUP = Actor(None, "test-setup", "Test set-up", "cli")


@pytest.mark.req("S95-06", "A11-07")
def test_an_engineer_sees_what_the_gateway_reads_from_the_plant_and_a_sensor_fault(
    page, live_db, tmp_path: Path
) -> None:
    from asyncua import ua

    engineer = make_user("engineer", ["administrator"])
    approver = make_user("qa", ["qa_approver"])
    with transaction.atomic():
        site = record_create(Site(code="p1", name="Plant 1"), actor=SETUP)
    kind = eq.equipment_class_create(actor=SETUP, code="fbd", name="Fluid-bed dryer")
    for code in ("GRAN-01", "FBD-01"):
        eq.equipment_create(actor=SETUP, site=site, code=code, name=code, equipment_class=kind)
    with Simulator() as plant:
        demo.seed(
            Actor.of(engineer, via="cli"),
            approver=Actor.of(approver, via="cli"),
            sign=sign,
            port=int(plant.sim.endpoint.split(":")[2].split("/")[0]),
        )
        gateway = Gateway(
            selectors.connections(),
            name="gw-page",
            spool=Spool(tmp_path / "s.sqlite3", max_rows=100),
            status_seconds=0.2,
        )
        with Running(gateway):
            until(lambda: StoredReading.objects.count() >= 4, "the simulator's four values stored")
            plant.sim.fault("ProductMoisture", ua.StatusCodes.BadSensorFailure)
            plant.call(plant.sim.step(1))
            until(lambda: StoredReading.objects.filter(quality="bad").exists(), "the fault stored")
            until(
                lambda: any(c.connected for c in selectors.connection_statuses()), "the connection reported"
            )

            log_in(page, "engineer")
            page.goto("/configuration/")
            page.get_by_test_id("gateway-link").click()
            page.get_by_role("heading", name="Equipment gateway").wait_for()
            assert page.locator("[data-gateway=gw-page]").count() == 1
            assert page.get_by_test_id("connected").count() == 1
            inlet = page.locator("[data-tag='ns=2;s=FBD-01.InletTemperature']")
            assert "°C" in inlet.get_by_test_id("last-value").inner_text()
            assert "good" in inlet.inner_text()
            moisture = page.locator("[data-tag='ns=2;s=FBD-01.ProductMoisture']")
            assert "BadSensorFailure" in moisture.inner_text() and "stale" in moisture.inner_text()
            assert moisture.get_by_test_id("last-value").inner_text() == "—"
    # An operator has no business here.
    make_user("olga", ["operator"])
    page.context.clear_cookies()
    log_in(page, "olga")
    response = page.goto("/gateway/")
    assert response is not None and response.status == 403
