"""A QA approver reads a recipe change in headless Chromium at 1280 px: reason, limits first, order last."""

from __future__ import annotations

import pytest

from batchline.audit.services import Actor
from batchline.recipes import services
from tests.conftest import make_user
from tests.e2e.tablet import keep_screenshot, measure
from tests.e2e.test_browser import log_in
from tests.recipes.test_recipe_services import SMALL, act

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Version 2: a tighter weight limit, a step inserted before the others, the mean weight step moved
# before the weights (a reorder), a title reworded.
INSERTED = """      - key: booth
        kind: instruction
        title: Check the booth
"""
CHANGED = (
    SMALL.replace(
        "    steps:\n      - key: clearance", "    steps:\n" + INSERTED + "      - key: clearance", 1
    )
    .replace(
        "high: 630}, critical: true}\n          - {name: w2",
        "high: 625}, critical: true}\n          - {name: w2",
    )
    .replace("title: Dry mix", "title: Dry blend")
)


@pytest.mark.req("MBR-02", "A11-13")
def test_the_approver_reads_the_change_by_importance_with_its_reason_and_no_sideways_scroll(
    page, live_db
) -> None:
    people = {
        "author": make_user("author", ["recipe_author"]),
        "approver": make_user("approver", ["qa_approver"]),
    }
    v1 = services.recipe_import(actor=Actor.of(people["author"], via="web"), text=SMALL)
    act(people["author"], v1, "submit", "performed")
    act(people["approver"], v1, "approve", "approved")
    act(people["approver"], v1, "make_effective", "approved")
    v2 = services.recipe_new_version(
        actor=Actor.of(people["author"], via="web"), recipe=v1, reason="Weight limit per CC-2026-014"
    )
    services.recipe_update(
        actor=Actor.of(people["author"], via="web"), recipe=v2, text=CHANGED, reason="edit"
    )

    log_in(page, "approver")
    page.goto(f"/recipes/{v2.pk}/")
    page.get_by_role("link", name="version 1").click()
    page.get_by_role("heading", name="TST-1: version 1 → version 2").wait_for()
    assert "Weight limit per CC-2026-014" in page.get_by_test_id("reason").inner_text()
    rows = page.locator("[data-testid=lines] tbody tr")
    tiers = [int(t) for t in rows.evaluate_all("rs => rs.map(r => r.dataset.tier)")]
    assert tiers == sorted(tiers) and tiers[0] == 1 and tiers[-1] == 4
    assert "upper specification limit changed from 630 mg to 625 mg" in rows.first.inner_text()
    assert rows.last.inner_text().count("Order:") == 1 and "renumbered" in rows.last.inner_text()
    assert "No open batch runs version 1." in page.get_by_test_id("affects").inner_text()
    # Every changed field is there, folded: the page starts with what matters.
    assert not page.get_by_test_id("changes").is_visible()
    layout = measure(page)
    assert layout["scroll_width"] <= 1280, layout["scroll_width"]
    keep_screenshot(page, "recipe-compare-qa-1280")
