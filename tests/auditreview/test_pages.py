"""The audit-trail review's pages with Django's client: who may do what, each refusal, the batch review
page's status, the report (A11-13, VAL-10)."""

from __future__ import annotations

import html
import re

import pytest

from batchline.audit.models import AuditEntry
from batchline.auditreview.models import ReviewState, TrailReview, TrailReviewMark
from batchline.signatures.models import Signature
from tests.auditreview.scenario import plant_with_batch
from tests.conftest import PASSWORD, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.req("A11-13", "A11D-03")]


def text(response) -> str:
    return re.sub(r"\s+", " ", html.unescape(response.content.decode()))


@pytest.fixture
def plant(db):
    people, _recipe, batch = plant_with_batch()
    people["auditor"] = make_user("auditor", ["auditor"])
    return people, batch


@pytest.mark.req("RBE-04", "P11-13")
def test_qa_opens_marks_and_signs_a_batch_review_and_the_batch_review_page_says_so(plant, login) -> None:
    people, _batch = plant
    reviewer = login(people["reviewer"])
    page = text(reviewer.get("/batches/B-1/review/"))
    assert "The batch's audit trail has not been reviewed." in page

    response = reviewer.post("/audit/reviews/open/", {"scope": "batch", "batch_number": "B-1"})
    review = TrailReview.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/audit/reviews/{review.pk}/"
    page = text(reviewer.get(f"/audit/reviews/{review.pk}/"))
    assert "Refused attempts and exceptions" in page
    assert "A refused attempt on the floor (REFUSED_LOT_EXPIRED)" in page
    assert f"{review.entry_count} entries in scope" in page
    assert "A review of its audit trail is open, not signed yet" in text(reviewer.get("/batches/B-1/review/"))

    # Signing first is refused in words, and nothing is signed.
    refused = reviewer.post(
        f"/audit/reviews/{review.pk}/sign/", {"signer_username": "reviewer", "signer_password": PASSWORD}
    )
    assert refused.status_code == 422
    assert "3 entries need attention and are not marked reviewed yet" in text(refused)
    assert not Signature.objects.filter(record_type="auditreview.trailreview").exists()

    flagged = [str(row[0]) for row in review.flagged]
    marked = reviewer.post(
        f"/audit/reviews/{review.pk}/mark/",
        {"entry": flagged, "comment": "Each assessed in its disposition."},
    )
    assert marked.status_code == 302
    assert (
        TrailReviewMark.objects.filter(review=review, comment="Each assessed in its disposition.").count()
        == 3
    )
    signed = reviewer.post(
        f"/audit/reviews/{review.pk}/sign/", {"signer_username": "reviewer", "signer_password": PASSWORD}
    )
    assert signed.status_code == 302
    review.refresh_from_db()
    assert review.state == ReviewState.SIGNED

    page = text(reviewer.get("/batches/B-1/review/"))
    assert "Audit trail reviewed by Reviewer Person at" in page
    assert f'<a href="/audit/reviews/{review.pk}/">review {review.pk}</a>' in page
    detail = text(reviewer.get(f"/audit/reviews/{review.pk}/"))
    assert "Signed <strong>reviewed</strong> by Reviewer Person (reviewer)" in detail
    assert "Mark the chosen entries reviewed" not in detail and "Sign the audit-trail review" not in detail


def test_an_auditor_reads_the_reviews_and_changes_nothing_and_an_operator_sees_none(plant, login) -> None:
    people, _batch = plant
    reviewer = login(people["reviewer"])
    reviewer.post("/audit/reviews/open/", {"scope": "batch", "batch_number": "B-1"})
    review = TrailReview.objects.get()
    auditor = login(people["auditor"])
    index = text(auditor.get("/audit/reviews/"))
    assert "Open the review" not in index and "batch B-1" in index
    page = text(auditor.get(f"/audit/reviews/{review.pk}/"))
    assert "A refused attempt on the floor" in page and "Sign the audit-trail review" not in page
    before = AuditEntry.objects.count()
    flagged = [str(row[0]) for row in review.flagged]
    assert auditor.post(f"/audit/reviews/{review.pk}/mark/", {"entry": flagged}).status_code == 403
    assert auditor.post("/audit/reviews/open/", {"scope": "batch", "batch_number": "B-1"}).status_code == 403
    assert auditor.post(f"/audit/reviews/{review.pk}/sign/", {"signer_password": PASSWORD}).status_code == 403
    assert AuditEntry.objects.count() == before
    operator = login(people["operator"])
    assert operator.get("/audit/reviews/").status_code == 403
    assert operator.get(f"/audit/reviews/{review.pk}/").status_code == 403


def test_refusals_are_shown_in_words_and_write_nothing(plant, login) -> None:
    people, _batch = plant
    reviewer = login(people["reviewer"])
    before = AuditEntry.objects.count()
    response = reviewer.post(
        "/audit/reviews/open/", {"scope": "period", "since": "2026-02-01", "until": "not a day"}
    )
    assert response.status_code == 422 and "Give the first and the last day of the period." in text(response)
    response = reviewer.post("/audit/reviews/open/", {"scope": "batch", "batch_number": "B-404"})
    assert response.status_code == 422 and "There is no batch 'B-404'." in text(response)
    assert AuditEntry.objects.count() == before
    reviewer.post("/audit/reviews/open/", {"scope": "batch", "batch_number": "B-1"})
    review = TrailReview.objects.get()
    response = reviewer.post(f"/audit/reviews/{review.pk}/mark/", {"entry": ["abc", "999999999"]})
    assert response.status_code == 422
    assert "Entry #0 does not need attention in this review." in text(response)
    response = reviewer.post(f"/audit/reviews/{review.pk}/mark/", {})
    assert response.status_code == 422 and "Choose the entries you reviewed." in text(response)
    wrong = reviewer.post(
        f"/audit/reviews/{review.pk}/sign/", {"signer_username": "reviewer", "signer_password": "wrong"}
    )
    assert wrong.status_code == 422 and "User ID or password is wrong" in text(wrong)
    assert not TrailReviewMark.objects.exists()


def test_the_report_lists_each_ended_batch_and_the_periodic_review(plant, login) -> None:
    people, _batch = plant
    page = text(login(people["auditor"]).get("/audit/reviews/"))
    assert re.search(r'data-batch="B-1" data-status="due"', page)
    assert "No periodic review has been signed; the first is due" in page and "in time" in page
    assert "every 30 days" in page
