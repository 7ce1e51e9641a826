"""A QA approver decides an engineer's gateway tag request on Master data → Requests, in headless
Chromium: the request says which unit's which parameter the tag would carry and from where, and the
tag exists (and is read) only once the approver has signed (issue 15)."""

from __future__ import annotations

import pytest

from batchline.audit.services import Actor
from batchline.gateway import services
from batchline.gateway.models import Tag
from batchline.gateway.selectors import connections
from tests.e2e.test_browser import log_in
from tests.e2e.test_master_data_browser import sign_in_dialog
from tests.gateway.conftest import make_plant, sign

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.req("A11-14", "P11-11", "S95-06")
def test_a_qa_approver_signs_a_gateway_tag_request_and_only_then_the_tag_is_read(page, live_db) -> None:
    plant = make_plant()
    engineer = Actor.of(plant["engineer"], via="web")
    services.endpoint_create(
        actor=engineer,
        code="dry-plc",
        name="Dryer PLC",
        protocol="opcua",
        address="opc.tcp://10.0.4.20:4840",
        reason="CC-2026-120",
    )
    request = services.tag_create_request(
        actor=engineer,
        signer=sign(engineer, "requested"),
        endpoint="dry-plc",
        equipment=plant["units"]["DRY-01"],
        tag="ns=2;s=FBD01.Inlet",
        name="dryer_inlet_temp",
        unit_of_measure="°C",
        reason="CC-2026-120 inlet air to the drying step",
    )
    assert not Tag.objects.exists() and connections() == []

    log_in(page, "qa")
    page.goto("/master-data/changes/")
    card = page.locator(f"[data-testid=gateway-request][data-request='{request.number}']")
    text = card.inner_text()
    assert "ns=2;s=FBD01.Inlet" in text and "DRY-01" in text and "dryer_inlet_temp" in text
    assert "opc.tcp://10.0.4.20:4840" in text and "CC-2026-120 inlet air to the drying step" in text
    page.get_by_test_id(f"approve-{request.number}").click()
    sign_in_dialog(page, "qa")
    page.get_by_text(f"{request.number} approved").wait_for()

    (tag,) = Tag.objects.all()
    assert (tag.equipment.code, tag.name, tag.unit_of_measure) == ("DRY-01", "dryer_inlet_temp", "°C")
    (connection,) = connections()
    assert [t.tag for t in connection.tags] == ["ns=2;s=FBD01.Inlet"]
