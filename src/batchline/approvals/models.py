"""A change that one person requests and a second person approves (DESIGN invariant 8).

Granting GMP signing authority and changing the GMP configuration take two
people: an administrator's signed request and a QA approver's signed
approval, and only the approval makes the change (21 CFR 11.10(g), 11.10(k);
Annex 11 §10, §12). The request says, in plain data, exactly what will be
applied and what it replaces; both signatures bind that content.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from batchline.audit.models import AuditedModel


class RequestState(models.TextChoices):
    REQUESTED = "requested", "Waiting for approval"
    APPROVED = "approved", "Approved and in effect"
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"


class ChangeRequest(AuditedModel):
    kind = models.CharField(max_length=40)  # a registered kind: "role_grant", "configuration"
    subject_type = models.CharField(max_length=80)
    subject_id = models.CharField(max_length=64)
    summary = models.TextField(help_text="What the change does, in words.")
    payload = models.JSONField(help_text="Exactly what is applied when the change is approved.")
    before = models.JSONField(help_text="What the change replaces, as it stood when requested.")
    reason = models.TextField()
    state = models.CharField(max_length=20, choices=RequestState.choices, default=RequestState.REQUESTED)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField()
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_comment = models.TextField(blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        indexes = [models.Index(fields=["subject_type", "subject_id"], name="change_subject_idx")]
        constraints = [
            # One open request per subject and kind: a second would be approved against a stale "before".
            models.UniqueConstraint(
                fields=["kind", "subject_type", "subject_id"],
                condition=models.Q(state="requested"),
                name="change_one_open_per_subject",
            ),
        ]
        permissions = [("approve_change", "Approve or reject changes another person requested")]

    def __str__(self) -> str:
        return f"{self.number} {self.summary}"

    @property
    def number(self) -> str:
        return f"CR-{self.pk:06d}" if self.pk else "CR-(new)"

    def signed_content(self) -> dict[str, Any]:
        """What the request's and the decision's signatures bind: the change itself."""
        return {
            "change_request": self.pk,
            "kind": self.kind,
            "subject_type": self.subject_type,
            "subject_id": self.subject_id,
            "summary": self.summary,
            "payload": self.payload,
            "before": self.before,
            "reason": self.reason,
        }
