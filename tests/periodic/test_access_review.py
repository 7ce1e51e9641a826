"""The periodic access review on a real database (21 CFR 11.300(b); Annex 11 §12): what it lists, who signs it,
what the signature binds, and the alert when it is overdue."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from batchline.accounts.models import SecurityAlert
from batchline.accounts.services import user_create
from batchline.approvals.services import change_approve
from batchline.audit.models import AuditEntry
from batchline.audit.services import Actor
from batchline.periodic.models import PeriodicReport, ReportState
from batchline.periodic.selectors import due_status, report_view
from batchline.periodic.services import ReportRefused, overdue_alerts_raise
from batchline.signatures.models import Signature
from tests.accounts.test_separation import request_grant, sign
from tests.configuration import configure
from tests.conftest import SETUP, make_user
from tests.periodic.helpers import account, prepare, sign_report

pytestmark = pytest.mark.django_db


def grant(personas, target: str, roles: list[str], *, admin: str = "admin") -> None:
    """A GMP role granted as the product does it: the administrator's signed request, QA's signed approval."""
    change = request_grant(personas[admin], personas[target], roles)
    approver = personas["qa_approver"]
    change_approve(actor=Actor.of(approver, via="web"), signer=sign(approver, "approved"), request=change)


@pytest.mark.req("P11-24", "A11-16", "A11D-02")
def test_it_lists_every_account_with_its_roles_signing_identity_login_and_password(personas, login) -> None:
    login(personas["operator"])
    user_create(actor=SETUP, username="nora", full_name="Nora Newcomer", email="")
    report = prepare(personas["admin"])

    data = report.data()
    assert {a["username"] for a in data["accounts"]} == {*personas, "nora"}
    operator = account(report, "operator")
    assert operator["roles"] == ["operator"] and operator["active"]
    assert operator["signing"] == {
        "gmp_signing_roles": ["operator"],
        "enabled": True,
        "acknowledged_at": operator["signing"]["acknowledged_at"],
        "blocked_by": [],
    }
    assert operator["last_login"] is not None and operator["password_changed_at"] is not None
    assert operator["password_changes_in_period"] == 1  # the set-up's, as the audit trail holds it
    nora = account(report, "nora")
    assert nora["last_login"] is None and nora["password_changed_at"] is None
    assert not nora["signing"]["enabled"]
    assert "no password yet: the credential issued has not been redeemed" in nora["signing"]["blocked_by"]
    admin = account(report, "admin")
    assert admin["roles"] == ["administrator"] and admin["signing"]["gmp_signing_roles"] == []
    # Roles set by the test set-up carry no signed role change: the review names each of them.
    assert any("qa_approver" in f and "without a signed role change" in f for f in data["findings"])
    assert any(
        "Supervisor Person (supervisor) holds GMP signing roles and has never logged in" in f
        for f in data["findings"]
    )
    assert report.period_start is None and data["period"]["start"] is None
    assert data["format"] == "batchline.access-review/1"


@pytest.mark.req("P11-24", "A11-16", "A11D-02")
def test_grants_since_the_last_review_are_listed_with_who_requested_and_who_approved(personas) -> None:
    grant(personas, "outsider", ["operator"])
    first = prepare(personas["admin"])
    (row,) = first.data()["role_changes"]
    assert row["user"] == {"username": "outsider", "name": "Outsider Person"}
    assert (row["before"], row["after"], row["gmp_signing_added"]) == ([], ["operator"], ["operator"])
    assert row["requested_by"]["username"] == "admin" and row["approved_by"]["username"] == "qa_approver"
    assert row["change_request"].startswith("CR-")
    sign_report(personas["qa_approver"], first, comment="all accounts checked against the HR list")

    grant(personas, "auditor", ["auditor", "supervisor"])
    second = prepare(personas["admin"])
    assert second.period_start == first.period_end
    data = second.data()
    assert [r["user"]["username"] for r in data["role_changes"]] == ["auditor"]
    assert data["role_changes_without_signature"] == []  # the set-up's came before the first review
    assert data["previous"]["number"] == first.number


@pytest.mark.req("P11-24", "P11-13", "A11D-02")
def test_the_signature_binds_the_content_and_a_signed_report_never_changes(personas) -> None:
    report = prepare(personas["admin"])
    signed = sign_report(personas["qa_approver"], report, comment="reviewed with HR leavers list")
    assert signed.state == ReportState.SIGNED and signed.signed_by == personas["qa_approver"]
    sig = Signature.objects.get(record_type="periodic.periodicreport", record_id=str(report.pk))
    assert (sig.meaning, sig.signer_username, sig.comment) == (
        "reviewed",
        "qa_approver",
        "reviewed with HR leavers list",
    )
    assert report_view(signed)["signature_status"] == "valid"
    assert AuditEntry.objects.filter(record_type="periodic.periodicreport", action="report_sign").count() == 1

    with pytest.raises(ReportRefused, match="is signed: it is not signed again"):
        sign_report(personas["qa_approver"], signed)

    # Someone with database rights edits the content (and its stored hash) behind the application's back.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE periodic_periodicreport SET content = REPLACE(content, '\"operator\"', '\"opera7or\"') "
            "WHERE id = %s",
            [report.pk],
        )
    view = report_view(PeriodicReport.objects.get(pk=report.pk))
    assert view["signature_status"] == "BROKEN" and not view["content_intact"]


@pytest.mark.req("P11-24", "A11D-02", "P11-11")
def test_only_a_qa_approver_signs_and_never_the_one_who_requested_the_grants_it_lists(personas) -> None:
    configure(incompatible_roles=[])  # a site that lets one person administer and approve
    make_user("adminqa", ["administrator", "qa_approver"])
    personas["adminqa"] = personas["admin"].__class__.objects.get(username="adminqa")
    grant(personas, "outsider", ["operator"], admin="adminqa")
    report = prepare(personas["adminqa"])

    with pytest.raises(ReportRefused, match="You made or requested 1 of the role changes"):
        sign_report(personas["adminqa"], report)
    with pytest.raises(ReportRefused, match="Only a QA approver signs"):
        sign_report(personas["qa_reviewer"], report)  # may sign "reviewed" elsewhere, not this
    assert PeriodicReport.objects.get(pk=report.pk).state == ReportState.PREPARED
    sign_report(personas["qa_approver"], report)


@pytest.mark.req("P11-24")
def test_a_new_report_withdraws_the_one_still_waiting_for_a_signature(personas) -> None:
    first = prepare(personas["admin"])
    second = prepare(personas["qa_approver"])
    first.refresh_from_db()
    assert first.state == ReportState.WITHDRAWN and first.withdrawn_reason == f"replaced by {second.number}"
    assert second.state == ReportState.PREPARED and second.number.endswith("-0002")
    with pytest.raises(ReportRefused, match="is withdrawn"):
        sign_report(personas["qa_approver"], first)
    with pytest.raises(ReportRefused, match="do not allow you to prepare"):
        prepare(personas["operator"])


@pytest.mark.req("P11-24", "A11D-02", "A11-15")
def test_an_overdue_review_raises_one_alert_per_due_date_and_a_signed_review_moves_the_date(personas) -> None:
    configure(access_review_interval_days=7)
    later = timezone.now() + dt.timedelta(days=8)

    (alert,) = overdue_alerts_raise(now=later)
    assert alert.kind == "access_review_overdue" and alert.severity == "warning"
    assert alert.message.startswith("The access review is overdue by 1 day: none has been signed since")
    assert overdue_alerts_raise(now=later) == []  # once per due date
    assert SecurityAlert.objects.filter(kind="access_review_overdue").count() == 1

    signed = sign_report(personas["qa_approver"], prepare(personas["admin"]))
    assert signed.signed_at is not None
    six_days_on = signed.signed_at + dt.timedelta(days=6)
    statuses = {s.kind: s for s in due_status(config=_config(), now=six_days_on)}
    assert not statuses["access_review"].due.overdue
    assert statuses["access_review"].due.due_at == signed.signed_at + dt.timedelta(days=7)
    assert overdue_alerts_raise(now=six_days_on) == []
    (again,) = overdue_alerts_raise(now=signed.signed_at + dt.timedelta(days=7, seconds=1))
    assert signed.number in again.message


def _config():
    from batchline.configuration.selectors import current

    return current()


@pytest.mark.req("P11-24", "NFR-06")
def test_preparing_an_access_review_reads_the_same_number_of_statements_for_ten_or_thirty_accounts(
    personas,
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    prepare(personas["admin"])

    def statements() -> int:
        with CaptureQueriesContext(connection) as queries:
            prepare(personas["admin"])  # withdraws the one before it, as each time
        return len(queries)

    few = statements()
    for n in range(20):
        make_user(f"extra{n}", ["operator"])
    grant(personas, "outsider", ["operator"])
    assert statements() == few


@pytest.mark.req("P11-24", "A11D-02")
def test_the_workers_round_raises_the_overdue_access_review(personas) -> None:
    from django.db import transaction

    from batchline.audit.services import record_update
    from batchline.integrity.verification import tick

    configure(access_review_interval_days=7)
    report = sign_report(personas["qa_approver"], prepare(personas["admin"]))
    assert tick().overdue_reviews == []
    with transaction.atomic():  # test set-up: as if it had been signed ten days ago
        record_update(report, actor=SETUP, values={"signed_at": timezone.now() - dt.timedelta(days=10)})
    assert tick().overdue_reviews == ["access_review_overdue"]
    assert tick().overdue_reviews == []
    alert = SecurityAlert.objects.get(kind="access_review_overdue")
    assert report.number in alert.message and alert.acknowledged_at is None
