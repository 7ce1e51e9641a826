"""The audit-trail review in headless Chromium (issue 13): QA reviews a batch's trail from its review
page, marks what needs attention, signs, and the batch review page shows who reviewed it and when."""

from __future__ import annotations

import pytest

from batchline.auditreview.models import ReviewState, TrailReview
from tests.auditreview.scenario import plant_with_batch
from tests.e2e.test_review_browser import as_user, done, sign_with

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.req("A11-13", "A11D-03", "RBE-04", "P11-13")
def test_qa_reviews_a_batch_trail_signs_and_the_review_page_shows_it(page, live_db) -> None:
    plant_with_batch("B-1")
    as_user(page, "reviewer")
    page.goto("/batches/B-1/review/")
    status = page.get_by_test_id("trail-review-status")
    assert "The batch's audit trail has not been reviewed." in status.inner_text()
    status.get_by_role("button", name="Review its audit trail").click()
    done(page, "Review of batch B-1 opened")

    # What needs attention first, each with its reason in words; the rest of the trail after it.
    flagged = page.get_by_test_id("flagged-entries")
    assert page.get_by_test_id("flagged-count").inner_text() == "3"
    for words in (
        "A refused attempt on the floor (REFUSED_LOT_EXPIRED)",
        "An exception was recorded (MANUAL_WEIGHT_ENTRY)",
        "An exception was recorded (CRITICAL_OUT_OF_SPECIFICATION)",
    ):
        assert words in flagged.inner_text()
    assert page.get_by_test_id("other-entries").locator("tbody tr").count() > 10

    # Signing before each is marked is refused in words; nothing is signed.
    sign_with(page, "Sign the audit-trail review…", "reviewer")
    assert (
        "3 entries need attention and are not marked reviewed yet"
        in page.get_by_test_id("refusal").inner_text()
    )
    page.keyboard.press("Escape")
    assert TrailReview.objects.get().state == ReviewState.OPEN

    page.get_by_label("Choose every unmarked entry on this page").check()
    assert page.locator("[data-chosen-count]").inner_text() == "3 chosen"
    page.get_by_label("Comment (optional): what you checked").fill("Each assessed with its disposition.")
    page.get_by_role("button", name="Mark the chosen entries reviewed").click()
    done(page, "3 entries marked reviewed.")
    assert page.get_by_test_id("marked-count").inner_text() == "3"
    assert "Each assessed with its disposition." in flagged.inner_text()
    sign_with(page, "Sign the audit-trail review…", "reviewer")
    done(page, "Audit-trail review of batch B-1 signed.")
    assert page.get_by_test_id("trail-review-state").inner_text() == "Signed"
    assert "by Reviewer Person (reviewer)" in page.get_by_test_id("trail-review-signature").inner_text()

    # The batch review page says who reviewed the trail and when, and links to the review.
    page.get_by_role("link", name="Batch B-1's review by exception").click()
    status = page.get_by_test_id("trail-review-status")
    assert "Audit trail reviewed by Reviewer Person at" in status.inner_text()
    review = TrailReview.objects.get()
    status.get_by_role("link", name=f"review {review.pk}").click()
    page.get_by_role("heading", name=f"Audit-trail review {review.pk}: batch B-1").wait_for()

    # The report of reviews done and due counts the batch reviewed.
    as_user(page, "approver")
    page.goto("/audit/reviews/")
    assert page.locator("[data-batch=B-1]").get_attribute("data-status") == "reviewed"
