"""The periodic-review pages with Django's client: who sees, prepares and signs; the PDF; the overdue notice."""

from __future__ import annotations

import datetime as dt
import subprocess

import pytest
from django.db import transaction
from django.utils import timezone

from batchline.audit.services import record_update
from batchline.periodic.models import PeriodicReport, ReportState
from tests.configuration import configure
from tests.conftest import PASSWORD, SETUP
from tests.periodic.helpers import prepare, sign_report

pytestmark = pytest.mark.django_db


def text(response) -> str:
    return response.content.decode()


@pytest.mark.req("P11-24", "A11-15", "P11-07")
def test_administrators_and_qa_approvers_prepare_auditors_read_and_operators_see_nothing(
    personas, login
) -> None:
    admin = login(personas["admin"])
    page = admin.get("/reviews/")
    assert page.status_code == 200
    assert 'data-testid="prepare-access_review"' in text(page) and "None signed yet." in text(page)
    assert login(personas["operator"]).get("/reviews/").status_code == 403
    auditor = login(personas["auditor"])
    assert auditor.get("/reviews/").status_code == 200
    assert 'data-testid="prepare-access_review"' not in text(auditor.get("/reviews/"))
    assert auditor.post("/reviews/prepare/", {"kind": "access_review"}).status_code == 403
    assert not PeriodicReport.objects.exists()

    made = admin.post("/reviews/prepare/", {"kind": "access_review"})
    report = PeriodicReport.objects.get()
    assert made.status_code == 302 and made["Location"] == f"/reviews/{report.number}/"
    shown = text(admin.get(made["Location"]))
    assert 'data-testid="section-accounts"' in shown and "Operator Person" in shown
    assert 'data-testid="sign-button"' not in shown  # an administrator does not sign it
    signed = admin.post(
        f"/reviews/{report.number}/sign/", {"signer_username": "admin", "signer_password": PASSWORD}
    )
    assert signed.status_code == 403
    report.refresh_from_db()
    assert report.state == ReportState.PREPARED


@pytest.mark.req("P11-24", "P11-13", "A11D-02")
def test_a_qa_approver_signs_on_the_page_and_a_wrong_password_signs_nothing(personas, login) -> None:
    report = prepare(personas["admin"])
    approver = login(personas["qa_approver"])
    page = text(approver.get(f"/reviews/{report.number}/"))
    assert 'data-testid="sign-button"' in page and 'data-sign-dialog="sign-report"' in page

    wrong = approver.post(
        f"/reviews/{report.number}/sign/", {"signer_username": "qa_approver", "signer_password": "not-it"}
    )
    assert wrong.status_code == 422 and "User ID or password is wrong" in text(wrong)
    assert 'id="sign-report" aria-labelledby="sign-report-title" data-open' in text(wrong)
    report.refresh_from_db()
    assert report.state == ReportState.PREPARED

    done = approver.post(
        f"/reviews/{report.number}/sign/",
        {
            "signer_username": "qa_approver",
            "signer_password": PASSWORD,
            "signer_comment": "HR list of 2026-06",
        },
    )
    assert done.status_code == 302
    page = text(approver.get(f"/reviews/{report.number}/"))
    assert (
        "Qa Approver Person — Reviewed" in page and "signature valid" in page and "HR list of 2026-06" in page
    )
    assert 'data-testid="sign-button"' not in page


@pytest.mark.req("P11-24", "A11-15", "A11-11")
def test_the_pdf_prints_the_signed_report_with_its_hash_on_every_page(personas, login, tmp_path) -> None:
    report = sign_report(personas["qa_approver"], prepare(personas["admin"]), comment="checked")
    response = login(personas["auditor"]).get(f"/reviews/{report.number}/pdf/")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="{report.number}.pdf"'
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(response.content)
    printed = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert f"Access review {report.number}" in printed
    assert "Operator Person" in printed and "Changes of roles without a signed role change" in printed
    assert "Qa Approver Person — Reviewed" in printed and "signature valid" in printed
    pages = printed.split("\f")
    assert all(f"Content SHA-256: {report.content_sha256}" in p for p in pages if p.strip())


@pytest.mark.req("A11-15", "VAL-10")
def test_a_periodic_evaluation_is_prepared_over_the_dates_typed(personas, login) -> None:
    admin = login(personas["admin"])
    today = timezone.localdate()
    refused = admin.post(
        "/reviews/prepare/",
        {
            "kind": "periodic_evaluation",
            "period_from": str(today),
            "period_to": str(today - dt.timedelta(days=2)),
        },
    )
    assert refused.status_code == 422 and "must end after it starts" in text(refused)
    bad = admin.post("/reviews/prepare/", {"kind": "periodic_evaluation", "period_from": "31/01/2026"})
    assert bad.status_code == 422 and "is not a date (e.g. 2026-01-31)" in text(bad)
    made = admin.post(
        "/reviews/prepare/",
        {"kind": "periodic_evaluation", "period_from": str(today - dt.timedelta(days=30))},
    )
    report = PeriodicReport.objects.get(kind="periodic_evaluation")
    assert made["Location"] == f"/reviews/{report.number}/"
    page = text(admin.get(made["Location"]))
    assert "keeps no incident log" in page and 'data-testid="section-backups"' in page
    pdf = admin.get(f"/reviews/{report.number}/pdf/")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


@pytest.mark.req("P11-24", "A11D-02")
def test_an_overdue_access_review_is_on_the_home_page_of_those_who_prepare_or_sign_it(
    personas, login
) -> None:
    configure(access_review_interval_days=7)
    report = sign_report(personas["qa_approver"], prepare(personas["admin"]))
    assert 'data-testid="review-overdue"' not in text(login(personas["admin"]).get("/"))
    with transaction.atomic():  # test set-up: as if it had been signed ten days ago
        record_update(report, actor=SETUP, values={"signed_at": timezone.now() - dt.timedelta(days=10)})
    for who in ("admin", "qa_approver"):
        home = text(login(personas[who]).get("/"))
        assert 'data-testid="review-overdue"' in home and "The access review is overdue by 3 days" in home
    assert 'data-testid="review-overdue"' not in text(login(personas["operator"]).get("/"))
    reviews = text(login(personas["admin"]).get("/reviews/"))
    assert 'data-testid="overdue"' in reviews
