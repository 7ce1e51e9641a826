"""The periodic access review in headless Chromium: an administrator prepares it, a QA approver reads it and signs
it in the signing dialog (a wrong password first: nothing is signed), and the signed report prints as a PDF."""

from __future__ import annotations

import pytest

from batchline.approvals.services import change_approve
from batchline.audit.services import Actor
from batchline.periodic.models import PeriodicReport, ReportState
from tests.accounts.test_separation import request_grant, sign
from tests.conftest import make_user
from tests.e2e.test_master_data_browser import sign_in_dialog
from tests.e2e.test_review_browser import as_user, done

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.req("P11-24", "A11-16", "A11D-02", "P11-13", "P11-19")
def test_an_access_review_is_prepared_by_the_administrator_and_signed_by_a_qa_approver(
    page, live_db, tmp_path
) -> None:
    admin = make_user("admin", ["administrator"], full_name="Ada Administrator")
    approver = make_user("approver", ["qa_approver"], full_name="Alex Approver")
    newcomer = make_user("nora", [], full_name="Nora Newcomer")
    change = request_grant(admin, newcomer, ["operator"])  # the administrator's signed request …
    change_approve(
        actor=Actor.of(approver, via="web"), signer=sign(approver, "approved"), request=change
    )  # … QA's

    as_user(page, "admin")
    page.get_by_role("link", name="Reviews", exact=True).click()
    page.get_by_test_id("prepare-access_review-button").click()
    done(page, "prepared: a QA approver reads and signs it")
    number = page.get_by_test_id("report-number").inner_text()
    changes = page.get_by_test_id("section-role-changes").inner_text()
    assert "Nora Newcomer (nora)" in changes and "none → operator" in changes
    assert "Ada Administrator (admin)" in changes and f"Alex Approver (approver), {change.number}" in changes
    assert page.get_by_test_id("sign-button").count() == 0  # the administrator who requested it does not sign

    as_user(page, "approver")
    page.get_by_text("Good to see you").wait_for()
    page.goto("/reviews/")
    page.get_by_test_id("waiting").click()
    accounts = page.get_by_test_id("section-accounts")
    assert "Nora Newcomer" in accounts.inner_text()
    page.get_by_test_id("sign-button").click()
    dialog = page.locator("dialog[open]")
    dialog.get_by_label("User ID").fill("approver")
    dialog.get_by_label("Password").fill("not-my-password")
    dialog.get_by_label("Comment (optional)").fill("Checked against the HR joiners list")
    dialog.get_by_role("button", name="Sign").click()
    page.get_by_test_id("dialog-refusal").wait_for()
    assert "User ID or password is wrong" in page.get_by_test_id("dialog-refusal").inner_text()
    assert PeriodicReport.objects.get(number=number).state == ReportState.PREPARED
    assert page.locator("dialog[open]").get_by_label("Comment (optional)").input_value() == (
        "Checked against the HR joiners list"
    )
    sign_in_dialog(page, "approver")
    done(page, f"{number} signed")
    assert page.get_by_test_id("report-state").inner_text() == "Signed"
    line = page.get_by_test_id("signature-line").inner_text()
    assert line.startswith("Alex Approver — Reviewed — ") and "Checked against the HR joiners list" in line
    assert line.endswith("signature valid")
    page.screenshot(path=str(tmp_path / "access-review.png"), full_page=True)

    pdf = page.context.request.get(page.get_by_test_id("report-pdf").get_attribute("href"))
    assert pdf.ok and pdf.headers["content-type"] == "application/pdf" and pdf.body().startswith(b"%PDF")
    assert PeriodicReport.objects.get(number=number).signed_by == approver
