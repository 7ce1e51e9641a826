"""Genealogy in headless Chromium: QA finds a lot, sees its drawn trace, follows it, asks a recall (GEN-02, GEN-03)."""

from __future__ import annotations

import os

import pytest

from tests.e2e.test_browser import log_in
from tests.genealogy import scenario

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.req("GEN-02", "GEN-03")
def test_qa_traces_a_packed_lot_back_to_its_raw_lots_and_recalls_a_supplier_lot(page, live_db) -> None:
    world = scenario.seed()
    log_in(page, "auditor")
    page.get_by_role("link", name="Genealogy").click()
    page.get_by_label("Trace a lot (lot number)").fill("P1")
    page.get_by_role("button", name="Find").click()
    page.get_by_test_id("found-lots").get_by_role("link", name="backward").click()
    graph = page.get_by_test_id("genealogy-graph")
    graph.wait_for()
    assert page.locator("svg g.node").count() == 9 + 6
    box = graph.locator("svg").bounding_box()
    assert box is not None and box["width"] > 1000  # eleven columns side by side, not one on another
    if os.environ.get("BATCHLINE_SCREENSHOTS"):
        page.screenshot(path=os.environ["BATCHLINE_SCREENSHOTS"] + "/genealogy.png", full_page=True)
    # The raw lot's box leads to its own page; from there its forward trace.
    page.locator(f'svg g[data-node="lot:{world["lots"]["A2"].pk}"] a').click()
    page.wait_for_url(f"**/lots/{world['lots']['A2'].pk}/")
    page.get_by_role("link", name="trace forward").click()
    page.get_by_test_id("trace-lots").wait_for()
    forward = page.get_by_test_id("trace-lots").inner_text()
    assert "P2" in forward and "G1" not in forward.split()

    page.get_by_role("link", name="Recall").first.click()
    page.get_by_label("… a supplier's lot reached (their lot number)").fill("SUP-E-1")
    page.get_by_test_id("recall-supplier").get_by_role("button", name="Recall").click()
    question = page.get_by_test_id("recall-question")
    question.wait_for()
    assert question.inner_text() == "Lots reached by supplier lot SUP-E-1: 7"
    batches = page.get_by_test_id("trace-batches").inner_text()
    assert "G1" in batches and "G2" not in batches
