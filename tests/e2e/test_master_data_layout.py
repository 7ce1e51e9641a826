"""The master-data pages in Chromium at 768 and 1280 px: no sideways scroll, targets for a finger,
forms found by their labels, a GMP change asking for the signature (issue 12)."""

from __future__ import annotations

import pytest
from django.db import transaction

from batchline.audit.services import record_create
from batchline.equipment.models import Site
from batchline.materials.models import Material
from tests.conftest import PASSWORD, SETUP, make_user
from tests.e2e.tablet import VIEWPORTS, keep_screenshot, measure, small_targets
from tests.e2e.test_browser import log_in
from tests.e2e.test_master_data_browser import sign_in_dialog
from tests.masterdata.test_master_data import MATERIAL, approve, change, request_new


@pytest.fixture
def plant(live_db: None):
    people = {
        name: make_user(name, [role])
        for name, role in (("admin", "administrator"), ("approver", "qa_approver"))
    }
    with transaction.atomic():
        record_create(Site(code="main", name="Main plant", time_zone="Europe/Berlin"), actor=SETUP)
    approve(people["approver"], request_new(people["admin"], "material", MATERIAL))
    change(people["admin"], "material", "LAC-200", {"retest_days": "180"}, reason="SOP-QA-012 revision 4")
    return people


def fits(page, name: str) -> None:
    layout = measure(page)
    assert layout["scroll_width"] <= layout["viewport_width"], (name, layout["scroll_width"])
    assert not small_targets(layout), (name, small_targets(layout))
    keep_screenshot(page, name)


@pytest.mark.req("A11-14", "NFR-02")
@pytest.mark.parametrize("viewport", ["portrait", "landscape"])
def test_the_master_data_pages_fit_the_screen_and_a_change_is_signed_by_its_label(
    page, plant, viewport
) -> None:
    page.set_viewport_size(VIEWPORTS[viewport])
    log_in(page, "admin")
    page.goto("/master-data/")
    fits(page, f"master-data-admin-{viewport}")
    page.goto("/master-data/material/")
    page.get_by_text("New material…").click()
    assert (
        page.get_by_label("Shelf life").is_visible() and page.get_by_label("Lots carry an assay").is_visible()
    )
    fits(page, f"master-data-materials-admin-{viewport}")
    page.goto("/master-data/material/LAC-200/")
    fits(page, f"master-data-material-admin-{viewport}")

    # A GMP field saved without a signature: the signing dialog opens with the value kept.
    page.get_by_label("Shelf life").fill("730")
    page.get_by_label("Reason for the change").fill("SOP-QA-012 revision 5")
    page.get_by_test_id("md-save").click()
    dialog = page.locator("#sign-change")
    dialog.wait_for()
    assert "requested with your signature" in dialog.inner_text()
    assert page.get_by_label("Shelf life").input_value() == "730"
    dialog.get_by_role("button", name="Cancel").click()

    # The name prints on the material's labels: signed and requested like the shelf life, so it waits
    # while the fixture's request for the retest interval is undecided (one open request per item).
    page.get_by_label("Shelf life").fill("1095")
    page.get_by_label("Name", exact=True).fill("Lactose 200M")
    page.get_by_label("Reason for the change").fill("the supplier's name")
    page.get_by_test_id("md-save").click()
    sign_in_dialog(page, "admin")
    page.get_by_text("A request for this is already waiting for approval").wait_for()
    assert page.get_by_label("Name", exact=True).input_value() == "Lactose 200M"  # kept, to send again
    assert Material.objects.get(code="LAC-200").name == "Lactose monohydrate 200 mesh"

    page.get_by_role("button", name="Log out").click()
    log_in(page, "approver")
    page.goto("/master-data/changes/")
    fits(page, f"master-data-changes-approver-{viewport}")
    page.get_by_test_id("approve-" + page.get_by_test_id("md-request").get_attribute("data-request")).click()
    dialog = page.locator("dialog[open]")
    if dialog.get_by_label("User ID").count():  # the first signing of a session asks for both
        dialog.get_by_label("User ID").fill("approver")
    dialog.get_by_label("Password").fill(PASSWORD)
    dialog.get_by_role("button", name="Sign").click()
    page.get_by_text("approved: in force now.").wait_for()
    assert Material.objects.get(code="LAC-200").retest_days == 180
