"""A QA approver decides an engineer's gateway tag request on Master data → Requests, in headless
Chromium: the request says which unit's which parameter the tag would carry and from where, and the
tag exists (and is read) only once the approver has signed; the engineer requests it on the gateway
page with their signature (issue 15)."""

from __future__ import annotations

import pytest

from batchline.audit.services import Actor
from batchline.gateway import services
from batchline.gateway.models import Tag
from batchline.gateway.selectors import connections
from tests.e2e.tablet import keep_screenshot
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


@pytest.mark.req("A11-14", "P11-11", "P11-13", "S95-06")
def test_an_engineer_requests_a_tag_on_the_gateway_page_a_qa_approver_approves_it_and_the_page_shows_it(
    page, live_db
) -> None:
    plant = make_plant()
    services.endpoint_create(
        actor=Actor.of(plant["engineer"], via="web"),
        code="dry-plc",
        name="Dryer PLC",
        protocol="opcua",
        address="opc.tcp://10.0.4.20:4840",
        reason="CC-2026-120",
    )
    log_in(page, "engineer")
    page.goto("/gateway/")
    page.get_by_test_id("tag-new").locator("summary").click()
    form = page.get_by_test_id("tag-new-form")
    form.get_by_label("Endpoint").select_option("dry-plc")
    form.get_by_label("Tag: node id").fill("ns=2;s=FBD01.Inlet")
    form.get_by_label("Equipment unit").select_option("DRY-01")
    form.get_by_label("Parameter, as recipes name it").fill("dryer_inlet_temp")
    form.get_by_label("Unit of measure (degC").fill("degC")
    form.get_by_label("Sampling interval").fill("500")
    form.get_by_label("Reason").fill("CC-2026-120 inlet air to the drying step")
    page.get_by_test_id("tag-new-sign").click()
    sign_in_dialog(page, "engineer")
    page.get_by_text("requested: a QA approver approves it").wait_for()
    waiting = page.get_by_test_id("gateway-waiting")
    assert "ns=2;s=FBD01.Inlet" in waiting.inner_text() and "yours" in waiting.inner_text()
    number = waiting.get_attribute("data-request")
    assert not Tag.objects.exists()
    waiting.scroll_into_view_if_needed()
    keep_screenshot(page, "gateway-tag-requested")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/login/")

    log_in(page, "qa")
    page.get_by_test_id("gateway-requests-waiting").wait_for()
    page.get_by_role("link", name="Master data → Requests").click()
    card = page.locator(f"[data-testid=gateway-request][data-request='{number}']")
    assert "DRY-01 · dryer_inlet_temp [degC], sampling 500 ms" in card.inner_text()
    page.get_by_test_id(f"approve-{number}").click()
    sign_in_dialog(page, "qa")
    page.get_by_text(f"{number} approved").wait_for()
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/login/")

    log_in(page, "engineer")
    page.goto("/gateway/")
    row = page.locator("[data-configured-tag='ns=2;s=FBD01.Inlet']")
    assert "dryer_inlet_temp" in row.inner_text() and "in force" in row.inner_text()
    assert page.locator("tr[data-tag='ns=2;s=FBD01.Inlet']").count() == 1  # read by the gateway's next start
    page.get_by_test_id("gateway-none-waiting").wait_for()
    row.scroll_into_view_if_needed()
    keep_screenshot(page, "gateway-tag-approved")
