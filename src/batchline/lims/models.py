"""The laboratory's side of sampling: a request per sample, and each result the LIMS sends back.

Both are GMP records, audited and append-only in the database (triggers, like the samples they
point at): a request says what the laboratory was asked to test, as it was sent; a result is
what the laboratory found and how Batchline judged it, never changed. A repeated test is a new
result with its own ID beside the first (SENAITE's retests), never an overwrite.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from batchline.audit.models import AuditedModel
from batchline.execution.models import BatchException, Sample, StepValue


class SampleRequest(AuditedModel):
    """What the LIMS is asked to test for one sample, as sent (the outbox message's body).

    Written in the sample's own transaction. ``message_key`` names the outbox message that
    carries it; blank when the installation has no LIMS destination (the request is still the
    record of what the sample is for, and results may still be posted).
    """

    sample = models.OneToOneField(Sample, on_delete=models.PROTECT, related_name="lims_request")
    content = models.JSONField(help_text="the request as sent to the LIMS")
    content_sha256 = models.CharField(max_length=64)
    message_key = models.CharField(max_length=200, blank=True, help_text="the outbox message's key")
    requested_at = models.DateTimeField()

    class Meta:
        ordering = ["requested_at", "id"]

    def __str__(self) -> str:
        return f"request for {self.sample_id}"


class LabResult(AuditedModel):
    """One result of one sample's test as the LIMS sent it, and Batchline's judgement of it.

    ``result_id`` is the LIMS's own ID of the result: the same ID received again has no effect
    (A11-07). ``value`` and ``unit`` are as sent; ``judged_value`` is the value converted into the
    unit of the recipe's limits, which ``specification`` states as judged (scaled to the batch).
    ``in_specification`` is None where the recipe gives no limits for the test.
    """

    result_id = models.CharField(max_length=100, unique=True, help_text="the LIMS's ID of the result")
    sample = models.ForeignKey(Sample, on_delete=models.PROTECT, related_name="lab_results")
    test = models.CharField(max_length=200)
    text = models.CharField(max_length=60, help_text="the value as the LIMS wrote it")
    value = models.DecimalField(max_digits=28, decimal_places=9)
    unit = models.CharField(max_length=30, blank=True)
    judged_value = models.DecimalField(max_digits=28, decimal_places=9, null=True, blank=True)
    judged_unit = models.CharField(max_length=30, blank=True)
    specification = models.CharField(max_length=200, blank=True, help_text="the limits it was judged by")
    in_specification = models.BooleanField(null=True)
    within_action = models.BooleanField(null=True)
    lims_verdict = models.CharField(
        max_length=10, blank=True, help_text="the LIMS's own verdict, if it sent one: pass or fail"
    )
    tested_at = models.DateTimeField(
        null=True, blank=True, help_text="when the laboratory tested, as it says"
    )
    comment = models.TextField(blank=True)
    via = models.CharField(max_length=20, help_text="json or b2mml")
    message_sha256 = models.CharField(max_length=64, help_text="SHA-256 of the message as received")
    step_value = models.OneToOneField(
        StepValue,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="lab_result",
        help_text="the value it recorded on the step that waited for it",
    )
    exception = models.ForeignKey(
        BatchException, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    lot_blocked = models.CharField(max_length=40, blank=True, help_text="the lot this result blocked")
    received_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    received_at = models.DateTimeField()

    class Meta:
        ordering = ["received_at", "id"]
        permissions = [("post_result", "Post laboratory results (the LIMS interface)")]

    def __str__(self) -> str:
        return f"{self.result_id}: {self.text} {self.unit}".rstrip()
