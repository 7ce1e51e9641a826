"""Deviations and the staged review of a batch (review by exception, 21 CFR 211.192, RBE-06).

A deviation moves open → under investigation → pending approval → closed, each
step signed; its links name the batches, lots and equipment it concerns, and an
open one blocks the release of every linked batch. A batch's review is a
sequence of signed stages (production review, QA review, the qualified person's
certification where configured, then QA's disposition); each stage row keeps
the completeness check it passed and the rule-set version that judged it.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from batchline.audit.models import AuditedModel


class Classification(models.TextChoices):
    MINOR = "minor", "Minor"
    MAJOR = "major", "Major"
    CRITICAL = "critical", "Critical"


class DeviationState(models.TextChoices):
    OPEN = "open", "Open"
    INVESTIGATION = "investigation", "Under investigation"
    PENDING_APPROVAL = "pending_approval", "Pending approval"
    CLOSED = "closed", "Closed"


class Deviation(AuditedModel):
    number = models.CharField(max_length=40, unique=True, help_text="DEV-2026-0001")
    title = models.CharField(max_length=200)
    classification = models.CharField(max_length=10, choices=Classification.choices)
    state = models.CharField(max_length=20, choices=DeviationState.choices, default=DeviationState.OPEN)
    description = models.TextField()
    immediate_action = models.TextField(blank=True)
    investigation = models.TextField(blank=True)
    root_cause = models.TextField(blank=True)
    impact = models.TextField(blank=True, help_text="impact on the linked batches and lots")
    capa_reference = models.CharField(max_length=60, blank=True)
    qms_reference = models.CharField(max_length=80, blank=True, help_text="its id in the external QMS")
    raised_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    raised_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-raised_at", "-id"]
        permissions = [
            ("raise_deviation", "Raise deviations"),
            ("investigate_deviation", "Investigate deviations"),
            ("approve_deviation", "Approve and close deviations"),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.title}"

    def record_content(self) -> dict[str, Any]:
        """What a batch record holds of this deviation, its links included (prefetch ``links``).

        One definition for the full record (reports) and the lean read that judges
        signatures (signatures/status.py), so the two cannot drift apart.
        """
        return {
            "id": self.pk,
            "number": self.number,
            "title": self.title,
            "classification": self.classification,
            "state": self.state,
            "description": self.description,
            "immediate_action": self.immediate_action,
            "investigation": self.investigation,
            "root_cause": self.root_cause,
            "impact": self.impact,
            "capa": self.capa_reference,
            "links": [
                {
                    "id": lk.pk,
                    "batch": lk.batch_number,
                    "lot": lk.lot_number,
                    "equipment": lk.equipment_code,
                    "exception": lk.exception_id,
                }
                for lk in sorted(self.links.all(), key=lambda lk: lk.pk)
            ],
        }


class DeviationLink(AuditedModel):
    """What a deviation concerns: a batch (by number), a lot, an equipment unit or an exception."""

    deviation = models.ForeignKey(Deviation, on_delete=models.PROTECT, related_name="links")
    batch_number = models.CharField(max_length=40, blank=True, db_index=True)
    lot_number = models.CharField(max_length=40, blank=True)
    equipment_code = models.CharField(max_length=40, blank=True)
    exception = models.ForeignKey(
        "execution.BatchException", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["id"]


class Stage(models.TextChoices):
    PRODUCTION_REVIEW = "production_review", "Production review"
    QA_REVIEW = "qa_review", "QA review"
    QP_CERTIFICATION = "qp_certification", "Certification by the qualified person"
    RELEASED = "released", "Released"
    REJECTED = "rejected", "Rejected"


class ReviewStage(AuditedModel):
    """One signed stage of a batch's review; append-only, in the order the stages were signed."""

    batch = models.ForeignKey("execution.Batch", on_delete=models.PROTECT, related_name="review_stages")
    stage = models.CharField(max_length=30, choices=Stage.choices)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()
    comment = models.TextField(blank=True)
    rules_version = models.CharField(max_length=40, help_text="rules/exceptions.py VERSION that judged it")
    checklist = models.JSONField(help_text="the completeness check as it stood when signed")
    # Nullable without a default, so SQLite adds the column in place and keeps the table's triggers.
    record_sha256 = models.CharField(
        max_length=64,
        null=True,
        blank=True,
        help_text="SHA-256 of the complete batch record this stage approved (rules.bindings.record_sha256)",
    )

    class Meta:
        ordering = ["at", "id"]
        constraints = [models.UniqueConstraint(fields=["batch", "stage"], name="review_stage_once")]
        permissions = [
            ("review_production", "Sign the production review of a batch"),
            ("review_quality", "Sign the QA review of a batch"),
            ("certify_batch", "Certify a batch as the qualified person"),
            ("disposition_batch", "Release or reject a batch"),
        ]
