"""The one outbox: every message that leaves Batchline (QMS events, ERP performance, LIMS sample requests).

A :class:`Message` is written in the same transaction as the change it reports, so a message
is never lost and never sent for a change that rolled back. The worker delivers it afterwards.
Integration plumbing, not GMP data: the record that changed carries the audit trail and the
signatures; an engineer's retry of a failed message is audited (outbox/services.py).
"""

from __future__ import annotations

from django.db import models


class Message(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed: retries exhausted"

    # A destination configured for the installation (settings.OUTBOX_DESTINATIONS): "qms", "erp", "lims".
    destination = models.CharField(max_length=64)
    # Messages of one stream (a batch, a deviation, a lot) reach their destination in the order
    # they were written: a later one waits while an earlier one is undelivered.
    stream = models.CharField(max_length=200)
    kind = models.CharField(max_length=100, help_text="what the message says, e.g. deviation.opened")
    # Sent with every attempt so that the receiver can drop a duplicate (a retry after it took the
    # message but before its answer came back).
    key = models.CharField(max_length=200, unique=True)
    content_type = models.CharField(max_length=100)
    body = models.TextField()
    created_at = models.DateTimeField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)
    # The deliverer that holds the message while it asks the destination (outbox/delivery.py); its
    # hold ends at next_attempt_at. A deliverer records its result only while the hold is still its own.
    lease = models.CharField(max_length=32, blank=True, default="")

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="outbox_due_idx"),
            models.Index(fields=["destination", "stream", "id"], name="outbox_stream_idx"),
            # "Is an earlier message of this stream still on its way?", asked for every message
            # claimed: only the undelivered few are looked at, however long the stream's history.
            models.Index(
                fields=["destination", "stream", "id"],
                name="outbox_open_stream_idx",
                condition=~models.Q(state="delivered"),
            ),
            # The deliverer's claim walks this in order and stops at its batch: pending messages in
            # the order they fell due, however many wait and however long the history.
            models.Index(
                fields=["next_attempt_at", "id"],
                name="outbox_pending_idx",
                condition=models.Q(state="pending"),
            ),
        ]
        permissions = [("retry_message", "Retry a failed outbox message")]

    def __str__(self) -> str:
        return f"{self.destination} {self.kind} {self.key} ({self.state})"


class Delivery(models.Model):
    """One attempt to deliver a message: when, to where, and what came back."""

    message = models.ForeignKey(Message, on_delete=models.PROTECT, related_name="deliveries")
    at = models.DateTimeField()
    target = models.CharField(max_length=500)
    status = models.PositiveIntegerField(null=True, help_text="HTTP status; none when no answer came")
    error = models.TextField(blank=True)
    response = models.TextField(blank=True)
    milliseconds = models.PositiveIntegerField()
    # The destination took the message: a 2xx answer, the broker's confirm, the stream's acknowledgement.
    ok = models.BooleanField(default=False)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.target} {self.status or self.error}"
