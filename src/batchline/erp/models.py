"""Messages the ERP sent (ISA-95 B2MML V0700) and the orders they made (S95-02, A11-07).

Every message received is kept, whatever became of it: its BODID (the id the
ERP gave it, by which a resend is recognised), the door it came through, who
sent it, the document as received with its SHA-256, what was done or why not,
and the answer sent back. A message waiting for something Batchline does not
yet know is *parked*, with the keys it waits for.
"""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models

from batchline.audit.models import AuditedModel
from batchline.execution.models import Batch


class MessageState(models.TextChoices):
    RECEIVED = "received", "Received"  # only inside the transaction that settles it
    APPLIED = "applied", "Applied"
    PARKED = "parked", "Parked: waiting"
    REFUSED = "refused", "Refused"
    EXPIRED = "expired", "Expired: refused after waiting"


class InboundMessage(AuditedModel):
    bodid = models.CharField(
        max_length=200, blank=True, help_text="ApplicationArea/BODID as sent; empty when none could be read"
    )
    # A second message under a BODID that names another already: refused, and kept beside the first.
    repeat_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="conflicting_repeats"
    )
    transport = models.CharField(max_length=20, help_text="https, folder, nats")
    verb = models.CharField(max_length=20, blank=True)
    noun = models.CharField(max_length=60, blank=True)
    sender = models.CharField(max_length=200, blank=True, help_text="ApplicationArea/Sender/LogicalID")
    received_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    received_at = models.DateTimeField()
    size = models.PositiveIntegerField(help_text="bytes received")
    body_sha256 = models.CharField(max_length=64, blank=True)
    body = models.BinaryField(help_text="the document as received (not kept above the size limit)")
    state = models.CharField(max_length=20, choices=MessageState.choices, default=MessageState.RECEIVED)
    code = models.CharField(max_length=40, blank=True, help_text="the outcome as a stable code")
    reason = models.TextField(blank=True, help_text="what was done, or why not, in words")
    waits_for = models.JSONField(default=list, blank=True, help_text="while parked: the keys it waits for")
    parked_at = models.DateTimeField(null=True, blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)
    reply = models.TextField(blank=True, help_text="the ConfirmBOD answered, the latest")

    # The body is kept byte for byte as received; the trail holds its SHA-256 (body_sha256), so a
    # body changed behind the application's back no longer matches what the trail says it was.
    AUDIT_EXCLUDE: ClassVar[frozenset[str]] = frozenset({"body"})
    AUDIT_DIGEST: ClassVar[frozenset[str]] = frozenset({"reply"})

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            # One message per BODID: two doors delivering it at once meet here, and one of them waits.
            models.UniqueConstraint(
                fields=["bodid"],
                condition=~models.Q(bodid="") & models.Q(repeat_of__isnull=True),
                name="erp_message_bodid_unique",
            ),
        ]
        indexes = [models.Index(fields=["state", "parked_at"], name="erp_message_state_idx")]
        permissions = [("send_message", "Send B2MML messages to Batchline as the ERP interface")]

    def __str__(self) -> str:
        return f"{self.bodid or '(no BODID)'} {self.verb}{self.noun} ({self.get_state_display()})"


class ErpOrder(AuditedModel):
    """An ERP production order (ISA-95 OperationsRequest; SAP's process order) and the batch made for it."""

    order_id = models.CharField(max_length=60, unique=True, help_text="OperationsRequest/ID (SAP AUFNR)")
    batch = models.OneToOneField(Batch, on_delete=models.PROTECT, related_name="erp_order")
    message = models.ForeignKey(InboundMessage, on_delete=models.PROTECT, related_name="orders")
    product = models.CharField(max_length=40)
    planned_start = models.DateTimeField(null=True, blank=True, help_text="OperationsRequest/StartTime")
    planned_end = models.DateTimeField(null=True, blank=True, help_text="OperationsRequest/EndTime")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"order {self.order_id} → batch {self.batch.number}"
