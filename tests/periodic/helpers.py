"""Preparing and signing periodic reports as the pages do, for the tests."""

from __future__ import annotations

from typing import Any

from batchline.accounts.models import User
from batchline.audit.services import Actor
from batchline.periodic import services
from batchline.periodic.models import PeriodicReport
from tests.accounts.test_separation import sign


def prepare(user: User, kind: str = "access_review", **period: Any) -> PeriodicReport:
    return services.report_prepare(actor=Actor.of(user, via="web"), user=user, kind=kind, **period)


def sign_report(user: User, report: PeriodicReport, comment: str = "") -> PeriodicReport:
    return services.report_sign(
        actor=Actor.of(user, via="web"), signer=sign(user, "reviewed"), report=report, comment=comment
    )


def account(report: PeriodicReport, username: str) -> dict[str, Any]:
    return next(a for a in report.data()["accounts"] if a["username"] == username)
