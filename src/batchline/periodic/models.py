"""Periodic reports: the access review (21 CFR 11.300(b); Annex 11 §12) and the periodic evaluation (Annex 11 §11).

A report is a frozen snapshot. When it is prepared, its content is read from
the records, written as canonical JSON (``rules/canonical.py``) and kept with
its SHA-256; the reviewer's signature binds that content. A signed report never
changes: the next period gets a report of its own. A prepared report that was
never signed is withdrawn when a newer one of its kind is prepared.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.conf import settings
from django.db import models

from batchline.audit.models import AuditedModel


class ReportKind(models.TextChoices):
    ACCESS_REVIEW = "access_review", "Access review"
    PERIODIC_EVALUATION = "periodic_evaluation", "Periodic evaluation"


PREFIX = {ReportKind.ACCESS_REVIEW: "AR", ReportKind.PERIODIC_EVALUATION: "PE"}


class ReportState(models.TextChoices):
    PREPARED = "prepared", "Prepared: waiting for the reviewer's signature"
    SIGNED = "signed", "Signed"
    WITHDRAWN = "withdrawn", "Withdrawn: replaced by a newer report"


class PeriodicReport(AuditedModel):
    kind = models.CharField(max_length=30, choices=ReportKind.choices)
    number = models.CharField(max_length=20, unique=True, help_text="AR-2026-0001, PE-2026-0001")
    period_start = models.DateTimeField(
        null=True, blank=True, help_text="exclusive; empty: since the installation began"
    )
    period_end = models.DateTimeField(help_text="inclusive: what the records held at this instant")
    prepared_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    prepared_at = models.DateTimeField()
    content = models.TextField(help_text="the report's canonical JSON, exactly as signed")
    content_sha256 = models.CharField(max_length=64)
    state = models.CharField(max_length=20, choices=ReportState.choices, default=ReportState.PREPARED)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    signed_at = models.DateTimeField(null=True, blank=True)
    withdrawn_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-prepared_at", "-id"]
        constraints = [
            # One report of a kind waits for a signature at a time: a newer one withdraws it.
            models.UniqueConstraint(
                fields=["kind"], condition=models.Q(state="prepared"), name="periodic_one_prepared_per_kind"
            ),
        ]
        permissions = [
            ("prepare_report", "Prepare an access review or a periodic evaluation"),
            ("sign_report", "Sign an access review or a periodic evaluation as its reviewer"),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.get_kind_display()}"

    def data(self) -> dict[str, Any]:
        return json.loads(self.content)

    def sha256_now(self) -> str:
        """SHA-256 of the content as it stands: differs from ``content_sha256`` if it was changed behind
        the application's back."""
        return hashlib.sha256(self.content.encode()).hexdigest()

    def signed_content(self) -> dict[str, Any]:
        """What the reviewer's signature binds: the report and the hash of its content as it stands now,
        so a content changed afterwards no longer matches the binding (21 CFR 11.70)."""
        return {
            "report": self.number,
            "kind": self.kind,
            "period_start": self.period_start,
            "period_end": self.period_end,
            "content_sha256": self.sha256_now(),
        }
