"""An operator reads the equipment status board and records a cleaning, in headless Chromium."""

from __future__ import annotations

import pytest

from batchline.equipment import services as svc
from tests.e2e.test_browser import log_in
from tests.equipment.test_equipment_services import A, claim, make_equipment_plant

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def dirty_press(live_db: None) -> dict:
    plant = make_equipment_plant()
    claim(plant, code="PRESS-01", batch="B-42")
    svc.equipment_release(actor=A(plant["people"]["operator"]), code="PRESS-01", batch_number="B-42")
    return plant


@pytest.mark.req("EQ-01", "EQ-02", "LOG-01", "LOG-02")
def test_an_operator_cleans_a_dirty_press_from_the_board(page, dirty_press) -> None:
    log_in(page, "operator")
    page.get_by_role("link", name="Equipment").first.click()
    board = page.get_by_test_id("equipment-board")
    press = board.locator('[data-code="PRESS-01"]')
    assert press.get_attribute("data-status") == "dirty"
    assert "clean by" in press.inner_text()
    press.click()
    page.fill("#cs-text", "Full clean per SOP-CLN-001")
    page.get_by_test_id("cleaning-start").click()
    page.get_by_text("PRESS-01: Cleaning started.").wait_for()
    assert page.get_by_test_id("equipment-status").get_attribute("data-status") == "cleaning"
    page.fill("#ce-text", "Visually clean")
    page.get_by_test_id("cleaning-end").click()
    page.get_by_text("PRESS-01: Cleaning recorded as done.").wait_for()
    kinds = page.locator("[data-testid=logbook] tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.kind)"
    )
    assert kinds[-4:] == ["use_start", "use_end", "cleaning_start", "cleaning_end"]
    page.get_by_role("link", name="← Equipment status").click()
    assert board.locator('[data-code="PRESS-01"]').get_attribute("data-status") == "clean"
    assert "clean until" in board.locator('[data-code="PRESS-01"]').inner_text()
