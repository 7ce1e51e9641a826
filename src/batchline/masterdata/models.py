"""Approved master-data changes and when each takes effect.

Every master-data change that needs approval is a two-person change request
(``approvals``); once approved, it is written here with the time it takes
effect: at once, or at the effective date the requester gave, when the
worker applies it. The change itself is written to the item through the
audit trail, so each item's own history holds the old and new values.
"""

from __future__ import annotations

from django.db import models

from batchline.approvals.models import ChangeRequest
from batchline.audit.models import AuditedModel


class MasterChange(AuditedModel):
    change_request = models.OneToOneField(
        ChangeRequest, on_delete=models.PROTECT, related_name="master_change"
    )
    kind = models.CharField(max_length=40)
    code = models.CharField(max_length=60)
    operation = models.CharField(max_length=10)  # create, change, retire
    effective_at = models.DateTimeField()
    applied_at = models.DateTimeField(null=True, blank=True)
    # Why an approved change could not take effect on its date (its item retired meanwhile).
    refused = models.TextField(blank=True)

    class Meta:
        ordering = ["effective_at", "id"]
        indexes = [
            models.Index(fields=["applied_at", "effective_at"], name="masterchange_due_idx"),
            models.Index(fields=["kind", "code"], name="masterchange_item_idx"),
        ]
        permissions = [("request_change", "Request master-data changes (a QA approver approves them)")]

    def __str__(self) -> str:
        return f"{self.kind} {self.code} {self.operation}"
