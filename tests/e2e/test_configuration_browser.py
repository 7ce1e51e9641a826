"""The GMP configuration page in headless Chromium: an administrator requests a change, a QA approver
approves it, each with their signature in the signing dialog; the new version is in force at once."""

from __future__ import annotations

import pytest

from batchline.configuration.selectors import current
from tests.conftest import make_user
from tests.e2e.test_review_browser import as_user, done, sign_with

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.req("A11-14", "P11-11", "P11-13")
def test_a_configuration_change_is_requested_and_approved_with_two_signatures(
    page, live_db, tmp_path
) -> None:
    make_user("admin", ["administrator"], full_name="Ada Administrator")
    make_user("approver", ["qa_approver"], full_name="Alex Approver")
    before = current()

    as_user(page, "admin")
    page.get_by_role("link", name="Configuration").click()
    assert page.get_by_test_id("version").inner_text() == str(before.version)
    page.get_by_label("Reconciliation tolerance (%)").fill("1.0")
    page.get_by_label("Reason for the change").fill("SOP-PR-021 rev 3: tolerance per lot")
    sign_with(page, "Sign and request…", "admin")
    done(page, "requested")
    pending = page.get_by_test_id("pending")
    assert "0.5" in pending.inner_text() and "1.0" in pending.inner_text()
    assert page.get_by_role("button", name="Approve and sign…").count() == 0  # not the requester's to approve
    assert current().reconciliation_tolerance_percent == before.reconciliation_tolerance_percent

    as_user(page, "approver")
    page.goto("/configuration/")
    sign_with(page, "Approve and sign…", "approver")
    done(page, "approved")
    assert page.get_by_test_id("version").inner_text() == str(before.version + 1)
    row = page.locator(f"[data-version='{before.version + 1}']").inner_text()
    assert "Reconciliation tolerance (%): 0.5 → 1.0" in row and "SOP-PR-021 rev 3" in row
    assert "Ada Administrator — Requested" in row and "Alex Approver — Approved" in row
    assert str(current().reconciliation_tolerance_percent) == "1.0"
    page.screenshot(path=str(tmp_path / "configuration.png"), full_page=True)


@pytest.mark.req("P11-12")
def test_the_api_docs_page_works_under_the_content_security_policy(page, live_db) -> None:
    """Swagger UI is vendored (no CDN) and runs without inline script; the page fixture fails on a violation."""
    make_user("auditor", ["auditor"])
    as_user(page, "auditor")
    page.goto("/api/v1/docs")
    page.locator(".swagger-ui .title", has_text="Batchline API").wait_for()
    page.locator(".opblock-tag", has_text="GMP configuration").first.wait_for()
