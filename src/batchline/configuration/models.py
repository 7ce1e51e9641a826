"""Versions of the GMP configuration (21 CFR 11.10(k); Annex 11 §10).

Each version holds every GMP setting; the newest is in force, for every
process at once. Versions are append-only in the database: a change is a new
version, made only by the approval of a two-person change request (the first
version is seeded from the environment of a new installation).
"""

from __future__ import annotations

from django.db import models

from batchline.approvals.models import ChangeRequest
from batchline.audit.models import AuditedModel


class ConfigVersion(AuditedModel):
    number = models.PositiveIntegerField(unique=True)
    values = models.JSONField()
    effective_at = models.DateTimeField()
    reason = models.TextField()
    change_request = models.OneToOneField(
        ChangeRequest, on_delete=models.PROTECT, null=True, blank=True, related_name="config_version"
    )

    class Meta:
        ordering = ["-number"]
        permissions = [("request_change", "Request a change of the GMP configuration")]

    def __str__(self) -> str:
        return f"configuration version {self.number}"
