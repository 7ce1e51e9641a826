"""The audit-trail review (Annex 11 §9, A11-13): a scope of the trail read by QA, its entries that need
attention each marked reviewed, and the whole review signed "reviewed".

A review's scope is frozen when it is opened: which entries it covers (``entries``, as id ranges), a
SHA-256 over their ids and hashes, and which of them need attention and why (``flagged``, judged by
``rules/trail.py`` against the working hours in force then). Signed, it never changes again.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from batchline.audit.models import AuditedModel


class Scope(models.TextChoices):
    BATCH = "batch", "Batch"
    PERIOD = "period", "Period"
    RECORD_TYPE = "record_type", "Record type"
    USER = "user", "User"


class ReviewState(models.TextChoices):
    OPEN = "open", "Open"
    SIGNED = "signed", "Signed"


class TrailReview(AuditedModel):
    scope = models.CharField(max_length=12, choices=Scope.choices)
    batch_number = models.CharField(max_length=40, blank=True, db_index=True)
    record_type = models.CharField(max_length=80, blank=True)
    username = models.CharField(max_length=150, blank=True)
    since = models.DateField(null=True, blank=True)  # site-local calendar days, inclusive
    until = models.DateField(null=True, blank=True)
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    opened_at = models.DateTimeField()
    entries = models.TextField()  # the entry ids in scope, as ranges: "1-300,412,415-420"
    entry_count = models.PositiveIntegerField()
    entries_sha256 = models.CharField(max_length=64)
    # [[entry id, tier, [why, ...]], ...] in reading order (rules/trail.py)
    flagged = models.JSONField(default=list)
    hours = models.CharField(max_length=200)  # the working hours judged by, in words, with their version
    state = models.CharField(max_length=10, choices=ReviewState.choices, default=ReviewState.OPEN)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    signed_at = models.DateTimeField(null=True, blank=True)
    comment = models.TextField(blank=True)

    class Meta:
        permissions = [("review_trail", "Review the audit trail and sign the review")]

    def __str__(self) -> str:
        return f"audit-trail review {self.pk} ({self.scope_text})"

    @property
    def scope_text(self) -> str:
        """``batch B-1``, ``user olga, 2026-12-01 to 2026-12-07``, ``period 2026-11-01 to 2026-11-30``."""
        head = {
            Scope.BATCH: f"batch {self.batch_number}",
            Scope.RECORD_TYPE: f"record type {self.record_type}",
            Scope.USER: f"user {self.username}",
            Scope.PERIOD: "period",
        }[Scope(self.scope)]
        if self.since or self.until:
            span = f"{self.since or 'the beginning'} to {self.until or 'the opening'}"
            head = f"{head} {span}" if self.scope == Scope.PERIOD else f"{head}, {span}"
        return head


class TrailReviewMark(AuditedModel):
    """One entry that needed attention, marked reviewed by the reviewer, with their comment."""

    review = models.ForeignKey(TrailReview, on_delete=models.PROTECT, related_name="marks")
    entry_id = models.BigIntegerField()
    comment = models.TextField(blank=True)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["review", "entry_id"], name="trailreview_mark_once")]

    def __str__(self) -> str:
        return f"entry #{self.entry_id} reviewed in review {self.review_id}"
