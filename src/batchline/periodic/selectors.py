"""What the periodic-review pages, the PDF and the worker read: reports, their signature, what is due."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from batchline.configuration.definitions import GmpConfig
from batchline.configuration.models import ConfigVersion
from batchline.rules.reviews import Due, overdue_message, review_due
from batchline.signatures.models import Signature
from batchline.signatures.services import signature_intact

from .models import PeriodicReport, ReportKind, ReportState

VIEW_PERMISSION = "periodic.view_periodicreport"
PREPARE_PERMISSION = "periodic.prepare_report"
SIGN_PERMISSION = "periodic.sign_report"

LABELS = {ReportKind.ACCESS_REVIEW: "access review", ReportKind.PERIODIC_EVALUATION: "periodic evaluation"}


def may_view(user: Any) -> bool:
    return bool(user and user.is_authenticated and user.has_perm(VIEW_PERMISSION))


def interval_days(kind: str, config: GmpConfig) -> int:
    if kind == ReportKind.ACCESS_REVIEW:
        return config.access_review_interval_days
    return config.periodic_evaluation_interval_days


def last_signed(kind: str) -> PeriodicReport | None:
    return (
        PeriodicReport.objects.filter(kind=kind, state=ReportState.SIGNED)
        .select_related("signed_by")
        .order_by("-signed_at", "-id")
        .first()
    )


def installed_at() -> dt.datetime:
    """When the installation began: its first GMP configuration version."""
    return ConfigVersion.objects.get(number=1).effective_at


@dataclass(frozen=True)
class Status:
    kind: str
    label: str
    due: Due
    last: PeriodicReport | None
    waiting: PeriodicReport | None  # prepared, not yet signed
    message: str  # the overdue message, empty while not overdue


def due_status(*, config: GmpConfig, now: dt.datetime) -> list[Status]:
    """For each kind of report: when the next is due, whether it is overdue, the last signed and the one waiting."""
    start = installed_at()
    waiting = {r.kind: r for r in PeriodicReport.objects.filter(state=ReportState.PREPARED)}
    out = []
    for kind in ReportKind:
        last = last_signed(kind)
        due = review_due(
            last_signed_at=last.signed_at if last else None,
            installed_at=start,
            interval_days=interval_days(kind, config),
            now=now,
        )
        label = LABELS[kind]
        message = (
            overdue_message(label, due, last_number=last.number if last else None, now=now)
            if due.overdue
            else ""
        )
        out.append(Status(kind, label, due, last, waiting.get(kind), message))
    return out


def reports_list(kind: str | None = None, limit: int = 200) -> list[PeriodicReport]:
    qs = PeriodicReport.objects.select_related("prepared_by", "signed_by").order_by("-prepared_at", "-id")
    if kind:
        qs = qs.filter(kind=kind)
    return list(qs[:limit])


def report_signature(report: PeriodicReport) -> Signature | None:
    return (
        Signature.objects.filter(record_type="periodic.periodicreport", record_id=str(report.pk))
        .order_by("signed_at", "id")
        .first()
    )


def report_view(report: PeriodicReport) -> dict[str, Any]:
    """The report, its content, and whether the content and the signature still hold."""
    signature = report_signature(report)
    content_intact = report.sha256_now() == report.content_sha256
    status = None
    if signature is not None:
        status = "valid" if signature_intact(signature, report.signed_content()) else "BROKEN"
    return {
        "report": report,
        "data": report.data(),
        "label": LABELS[ReportKind(report.kind)],
        "signature": signature,
        "signature_status": status,
        "content_intact": content_intact,
    }
