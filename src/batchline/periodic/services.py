"""Prepare and sign the periodic reports; raise an alert when one is overdue.

- :func:`report_prepare` reads the records (``periodic/content.py``), freezes the
  content as canonical JSON with its SHA-256 and withdraws the report of the same
  kind still waiting for a signature (21 CFR 11.300(b); Annex 11 §11, §12).
- :func:`report_sign`: the reviewer's e-signature (meaning "reviewed") binds the
  content's hash; a signed report never changes.
- :func:`overdue_alerts_raise` (the worker, every round): an overdue review raises
  a security alert once per due date, where every other alert is shown.

Every write is one transaction with its audit entries.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from batchline.accounts.alerts import security_alert_raise
from batchline.accounts.models import AlertSeverity, SecurityAlert
from batchline.audit.services import Actor, record_create, record_update
from batchline.configuration.selectors import current, one_version
from batchline.rules import canonical
from batchline.signatures.models import Meaning
from batchline.signatures.services import VerifiedSigner, signature_apply

from .content import access_review_content, evaluation_content
from .models import PREFIX, PeriodicReport, ReportKind, ReportState
from .selectors import LABELS, PREPARE_PERMISSION, SIGN_PERMISSION, due_status, last_signed


class ReportRefused(ValueError):
    """A refused preparation or signature; the message is for the person in front of the screen."""


def _period(
    kind: str, start: dt.datetime | None, end: dt.datetime | None, now: dt.datetime
) -> tuple[dt.datetime | None, dt.datetime]:
    previous = last_signed(kind)
    if kind == ReportKind.ACCESS_REVIEW:
        # An access review covers everything since the last one: its period is not chosen.
        return (previous.period_end if previous else None), now
    until = min(end, now) if end is not None else now
    since = start if start is not None else (previous.period_end if previous else None)
    if since is not None and since >= until:
        raise ReportRefused("The period must end after it starts, and not in the future.")
    return since, until


def _number(kind: str, now: dt.datetime) -> str:
    prefix = f"{PREFIX[ReportKind(kind)]}-{now:%Y}-"
    count = PeriodicReport.objects.filter(number__startswith=prefix).count()
    return f"{prefix}{count + 1:04d}"


def report_prepare(
    *,
    actor: Actor,
    user: Any,
    kind: str,
    period_start: dt.datetime | None = None,
    period_end: dt.datetime | None = None,
) -> PeriodicReport:
    """Freeze a report of ``kind`` over its period for a reviewer to sign.

    Locks the report of this kind still waiting for a signature and withdraws it
    (its snapshot is older than this one). An access review always covers the time
    since the last signed one; a periodic evaluation covers the period given, by
    default the time since the last signed one.
    """
    if kind not in ReportKind.values:
        raise ReportRefused(f"{kind[:40]!r} is not a kind of periodic report.")
    if not user.has_perm(PREPARE_PERMISSION):
        raise ReportRefused("Your roles do not allow you to prepare a periodic report.")
    label = LABELS[ReportKind(kind)]
    now = timezone.now()
    since, until = _period(kind, period_start, period_end, now)
    build = access_review_content if kind == ReportKind.ACCESS_REVIEW else evaluation_content
    try:
        # One configuration version for the whole report (password expiry is judged per account).
        with one_version(), transaction.atomic():
            number = _number(kind, now)
            for old in PeriodicReport.objects.select_for_update().filter(
                kind=kind, state=ReportState.PREPARED
            ):
                record_update(
                    old,
                    actor=actor,
                    values={"state": ReportState.WITHDRAWN, "withdrawn_reason": f"replaced by {number}"},
                    reason=f"replaced by {number}, prepared by {user.printed_name}",
                    action="report_withdraw",
                )
            text = canonical.dumps_normalised(build(since=since, until=until, config=current()))
            report = PeriodicReport(
                kind=kind,
                number=number,
                period_start=since,
                period_end=until,
                prepared_by=user,
                prepared_at=now,
                content=text,
                content_sha256=hashlib.sha256(text.encode()).hexdigest(),
            )
            record_create(report, actor=actor, action="report_prepare", reason=f"{label} {number} prepared")
    except IntegrityError:
        raise ReportRefused(
            f"Another {label} was prepared at the same moment: open the list and look at it."
        ) from None
    return report


def _own_grants(data: dict[str, Any], username: str) -> str | None:
    """Why ``username`` may not review this access review: they made or requested role changes it lists.

    The two-person rule of every grant (approvals/services.py: the approver is not the requester) holds
    for its review too: an administrator who also holds the QA approver role (a site whose configuration
    allows it) never reviews their own grants. The reviewer's own roles and the grants they approved are
    listed in the review under their name, for everyone reading it to see.
    """
    made = [r for r in data["role_changes"] if (r.get("requested_by") or {}).get("username") == username]
    made += [r for r in data["role_changes_without_signature"] if r["by"]["username"] == username]
    if made:
        return (
            f"You made or requested {len(made)} of the role changes this review lists: "
            "another QA approver reviews them."
        )
    return None


def report_sign(
    *, actor: Actor, signer: VerifiedSigner, report: PeriodicReport, comment: str = ""
) -> PeriodicReport:
    """The reviewer signs the report as prepared (meaning "reviewed"); locks it; it never changes after."""
    user = signer.user
    if user.pk != actor.id:
        raise ReportRefused("A report is signed by the person logged in.")
    if not user.has_perm(SIGN_PERMISSION):
        raise ReportRefused("Only a QA approver signs a periodic report as its reviewer.")
    with transaction.atomic():
        locked = PeriodicReport.objects.select_for_update().get(pk=report.pk)
        if locked.state != ReportState.PREPARED:
            raise ReportRefused(
                f"{locked.number} is {locked.get_state_display().lower()}: it is not signed again."
            )
        if locked.sha256_now() != locked.content_sha256:
            raise ReportRefused(
                f"{locked.number}'s content no longer matches the SHA-256 it was prepared with: it was changed "
                "outside Batchline. Prepare a new report."
            )
        if locked.kind == ReportKind.ACCESS_REVIEW:
            problem = _own_grants(locked.data(), user.username)
            if problem:
                raise ReportRefused(problem)
        record_update(
            locked,
            actor=actor,
            values={"state": ReportState.SIGNED, "signed_by": user, "signed_at": timezone.now()},
            reason=comment.strip() or signer.comment,
            action="report_sign",
        )
        signature_apply(
            signer=signer,
            meaning=Meaning.REVIEWED,
            record=locked,
            content=locked.signed_content(),
            actor=actor,
            comment=comment,
        )
    return locked


def overdue_alerts_raise(*, now: dt.datetime | None = None) -> list[SecurityAlert]:
    """Raise a security alert for each overdue review, once per due date (the worker calls it each round)."""
    now = now or timezone.now()
    raised = []
    for status in due_status(config=current(), now=now):
        if not status.due.overdue:
            continue
        kind = f"{status.kind}_overdue"
        due_at = canonical.normalise(status.due.due_at)
        if SecurityAlert.objects.filter(kind=kind, details__due_at=due_at).exists():
            continue
        raised.append(
            security_alert_raise(
                kind=kind,
                message=status.message,
                details={"due_at": due_at, "last": status.last.number if status.last else None},
                severity=AlertSeverity.WARNING,
            )
        )
    return raised
