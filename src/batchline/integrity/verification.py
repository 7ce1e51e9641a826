"""What the worker runs on a schedule: checkpoints and the full verification, with alerts.

Each scheduled verification leaves an ``audit_verify`` entry in the trail (who
ran it: the system; what it found), which is also how the next run knows when
the last one was. A failure raises a security alert (``accounts/alerts.py``):
in the application for security administrators and auditors, by mail where a
relay is configured, and in the log. The same findings are not alerted twice
in a row; a different set of findings is, and so are findings that come back
after a clean run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from batchline.accounts.alerts import security_alert_raise
from batchline.audit.anchors import Anchor
from batchline.audit.checkpoints import Made, checkpoint_create, checkpoint_due
from batchline.audit.models import AuditEntry
from batchline.audit.services import SYSTEM, audit_append
from batchline.audit.verify import Finding, Report, verify
from batchline.configuration.selectors import current
from batchline.signatures.status import broken_signatures

if TYPE_CHECKING:
    from batchline.gateway.downsample import Upkeep

log = logging.getLogger("batchline.worker")


def full_verify(
    *,
    replay: bool = True,
    max_findings: int = 100,
    public_key: bytes | None = None,
    anchors: Sequence[Anchor] | None = None,
) -> Report:
    """``audit verify`` with the configured clock tolerance, plus the signatures whose content changed.

    The one verification every caller runs (the command, the worker, a restore); ``public_key``
    and ``anchors`` default to the installation's own.
    """
    report = verify(
        replay=replay,
        max_findings=max_findings,
        clock_tolerance=float(current().clock_tolerance_seconds),
        public_key=public_key,
        anchors=anchors,
    )
    for message in broken_signatures():
        if len(report.findings) < max_findings:
            report.findings.append(Finding("signature", message))
    return report


def checkpoint_now() -> Made:
    """Take a checkpoint; an anchor that could not be written raises a security alert."""
    made = checkpoint_create()
    for problem in made.anchor_problems:
        security_alert_raise(
            kind="anchor_failed",
            message=f"Checkpoint {made.checkpoint.number} could not be anchored: {problem}",
            details={"checkpoint": made.checkpoint.number},
        )
    return made


def _digest(findings: list[Finding]) -> str:
    return hashlib.sha256("\n".join(sorted(str(f) for f in findings)).encode()).hexdigest()


def _last_verify() -> AuditEntry | None:
    return AuditEntry.objects.filter(action="audit_verify").order_by("-id").first()


def verify_due(interval: dt.timedelta) -> bool:
    last = _last_verify()
    return last is None or timezone.now() - last.at >= interval


def scheduled_verify() -> Report:
    """Verify, record that it ran and what it found, and alert on findings that are news."""
    report = full_verify()
    digest = _digest(report.findings)
    last = _last_verify()
    before = json.loads(last.changes).get("findings_digest", [None, None])[1] if last else None
    with transaction.atomic():
        audit_append(
            action="audit_verify",
            record_type="audit.trail",
            record_id="all",
            actor=SYSTEM,
            changes={
                "result": [None, "ok" if report.ok else "findings"],
                "findings": [None, len(report.findings)],
                "findings_digest": [None, digest],
                "entries": [None, report.entries],
                "newest_checkpoint": [None, report.newest_checkpoint],
            },
            reason="scheduled verification",
        )
    if not report.ok and digest != before:
        first = "; ".join(str(f) for f in report.findings[:3])
        security_alert_raise(
            kind="verify_failed",
            message=f"The audit trail does not verify: {len(report.findings)} findings. {first}",
            details={"findings": [str(f) for f in report.findings[:20]]},
        )
    return report


@dataclass
class Ran:
    checkpoint: int | None = None
    verified: bool | None = None  # None: not due
    delivered: int = 0
    # Approved master-data changes whose effective date came (masterdata/services.py).
    master_changes: list[str] = field(default_factory=list)
    # Overdue access reviews or periodic evaluations alerted this round (periodic/services.py).
    overdue_reviews: list[str] = field(default_factory=list)
    # Parked ERP messages applied (what they waited for is here) or expired this round (erp/inbound.py).
    erp_applied: list[str] = field(default_factory=list)
    erp_expired: list[str] = field(default_factory=list)
    # Process data downsampled and old data removed (gateway/downsample.py), when that was due.
    gateway_upkeep: Upkeep | None = None


def tick() -> Ran:
    """One round of the worker: whatever is due now."""
    config = current()
    ran = Ran()
    if checkpoint_due(dt.timedelta(minutes=config.checkpoint_interval_minutes)):
        ran.checkpoint = checkpoint_now().checkpoint.number
    if verify_due(dt.timedelta(minutes=config.verify_interval_minutes)):
        ran.verified = scheduled_verify().ok
    from batchline.outbox.delivery import deliver_due

    # Every destination's due messages (the QMS feed, ERP, LIMS): what the on-commit delivery
    # missed, retries whose pause ended, and messages a dead deliverer's lease let go.
    ran.delivered = deliver_due()
    from batchline.masterdata.services import changes_due_apply

    ran.master_changes = changes_due_apply()
    from batchline.periodic.services import overdue_alerts_raise

    ran.overdue_reviews = [alert.kind for alert in overdue_alerts_raise()]
    from batchline.erp.inbound import parked_due

    due = parked_due()
    ran.erp_applied, ran.erp_expired = due.applied, due.expired
    # Last: the longest job of a round (a day of readings per transaction), hourly.
    from batchline.gateway.downsample import upkeep_due

    ran.gateway_upkeep = upkeep_due()
    return ran
