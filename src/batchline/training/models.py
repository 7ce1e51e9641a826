"""Qualifications (SOPs and skills) and who was trained on them until when (TRN-01, 21 CFR 11.10(i))."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from batchline.audit.models import AuditedModel


class QualificationKind(models.TextChoices):
    SOP = "sop", "SOP"
    SKILL = "skill", "Skill"


class Qualification(AuditedModel):
    """Something a person is trained on: an SOP at a version, or a skill (running the press)."""

    code = models.CharField(max_length=60, unique=True, help_text="e.g. SOP-GRAN-001, as recipes name it")
    title = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=QualificationKind.choices, default=QualificationKind.SOP)
    version = models.PositiveIntegerField(default=1, help_text="training on an older version does not count")
    # Training recorded on it expires this long after it was given; empty: it does not expire.
    retrain_interval_days = models.PositiveIntegerField(null=True, blank=True)
    # The curricula it is part of: the roles whose holders must be trained on it (TRN-01).
    roles = models.JSONField(default=list, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["code"]
        permissions = [("manage_training", "Record qualifications and training")]

    def __str__(self) -> str:
        return f"{self.code} v{self.version} — {self.title}"


class TrainingRecord(AuditedModel):
    """One person trained on one qualification, at one version, from ``trained_at`` until ``expires_at``."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="training")
    qualification = models.ForeignKey(Qualification, on_delete=models.PROTECT, related_name="records")
    version = models.PositiveIntegerField()
    trained_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True, help_text="empty: does not expire")
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField()
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["user", "qualification", "-trained_at"]
        indexes = [models.Index(fields=["user", "qualification"], name="training_user_qual_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=models.F("trained_at")),
                name="training_expires_after_trained",
            )
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.qualification_id} {self.trained_at:%Y-%m-%d}"
