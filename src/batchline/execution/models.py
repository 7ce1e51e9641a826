"""Batches, their steps, recorded values and exceptions (ISA-88 control recipe and batch record).

Values and exceptions are append-only in the database, like the audit trail:
a correction is a new value that points at the one it corrects.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models

from batchline.audit.models import AuditedModel
from batchline.recipes.models import MasterRecipe
from batchline.rules import exceptions, gates


class BatchState(models.TextChoices):
    CREATED = "created", "Created"
    RELEASED = "released", "Released to the floor"
    RUNNING = "running", "Running"
    HELD = "held", "Held"
    COMPLETE = "complete", "Complete"
    ABORTED = "aborted", "Aborted"
    # After execution, quality's staged review (quality/services.py) moves the batch on.
    IN_REVIEW = "in_review", "In review"
    QA_RELEASED = "qa_released", "Released by QA"
    REJECTED = "rejected", "Rejected"


class Batch(AuditedModel):
    number = models.CharField(max_length=40, unique=True)
    recipe = models.ForeignKey(MasterRecipe, on_delete=models.PROTECT, related_name="batches")
    planned_quantity = models.DecimalField(max_digits=18, decimal_places=6)
    nominal_quantity = models.DecimalField(
        max_digits=18, decimal_places=6, help_text="the recipe's batch size"
    )
    unit = models.CharField(max_length=30)
    scale = models.DecimalField(max_digits=18, decimal_places=9, help_text="planned ÷ nominal batch size")
    state = models.CharField(max_length=20, choices=BatchState.choices, default=BatchState.CREATED)
    control_recipe = models.JSONField(help_text="the master recipe as it was when the batch was created")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()
    blocking_exceptions = models.PositiveIntegerField(
        default=0, help_text="blocking exceptions not yet dispositioned: execution waits while above 0"
    )

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            ("control_batch", "Create, release, hold, resume and abort batches"),
            ("execute_batch", "Execute batch steps"),
        ]

    def __str__(self) -> str:
        return f"{self.number} ({self.get_state_display()})"

    @property
    def ratio(self) -> tuple[Decimal, Decimal]:
        """Planned and nominal size: scaled figures are value × planned ÷ nominal, multiplied first."""
        return Decimal(self.planned_quantity), Decimal(self.nominal_quantity)


class StepState(models.TextChoices):
    PENDING = gates.PENDING, "Not started"
    RUNNING = gates.RUNNING, "In progress"
    AWAITING_VERIFICATION = gates.AWAITING_VERIFICATION, "Waiting for verification"
    DONE = gates.DONE, "Complete"


class BatchStep(AuditedModel):
    batch = models.ForeignKey(Batch, on_delete=models.PROTECT, related_name="steps")
    key = models.CharField(max_length=40)
    seq = models.PositiveIntegerField(help_text="position in an order that respects every predecessor")
    operation = models.CharField(max_length=200)
    title = models.CharField(max_length=200)
    kind = models.CharField(max_length=20)
    # The step's part of the control recipe, so an action reads one small row
    # rather than the whole frozen document.
    spec = models.JSONField()
    predecessors = models.JSONField(default=list)
    state = models.CharField(max_length=30, choices=StepState.choices, default=StepState.PENDING)
    started_at = models.DateTimeField(null=True, blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    completed_at = models.DateTimeField(null=True, blank=True)
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    verified_at = models.DateTimeField(null=True, blank=True)
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["batch", "seq"]
        constraints = [models.UniqueConstraint(fields=["batch", "key"], name="batchstep_key_unique")]
        # Only the steps not yet done: whether a completion left any open reads one entry,
        # not every step the batch has already done (docs/performance.md).
        indexes = [
            models.Index(fields=["batch"], condition=~models.Q(state="done"), name="batchstep_open_idx")
        ]

    def __str__(self) -> str:
        return f"{self.batch.number}/{self.key}"

    def definition(self) -> dict[str, Any]:
        return dict(self.spec)


class StepValue(AuditedModel):
    step = models.ForeignKey(BatchStep, on_delete=models.PROTECT, related_name="values")
    name = models.CharField(max_length=40)
    label = models.CharField(max_length=200)
    source = models.CharField(
        max_length=20,
        choices=[
            ("entered", "entered"),
            ("calculated", "calculated"),
            ("measured", "measured"),
            ("laboratory", "laboratory"),
            ("device", "device"),
            ("manual", "manual"),
        ],
        help_text="typed, computed by a formula, measured by the system (a timer's duration), the "
        "laboratory's result of a sample the step waits for, read from a machine through the gateway "
        "(device), or typed in place of that reading with a reason and a witness (manual)",
    )
    text = models.CharField(max_length=2000, help_text="as entered, or the calculated number as text")
    number = models.DecimalField(max_digits=28, decimal_places=9, null=True, blank=True)
    unit = models.CharField(max_length=30, blank=True)
    in_specification = models.BooleanField(null=True)
    within_action = models.BooleanField(null=True)
    critical = models.BooleanField(
        default=False, help_text="a critical process parameter or quality attribute"
    )
    entered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    entered_at = models.DateTimeField()
    corrects = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="corrected_by"
    )
    reason = models.TextField(blank=True)
    station = models.CharField(
        max_length=40, blank=True, help_text="the registered station it was entered at (21 CFR 11.10(h))"
    )
    # Defined after the Sample model below, hence the name.
    sample = models.ForeignKey(
        "Sample",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="values",
        help_text="a laboratory result: the sample it is the result of",
    )

    class Meta:
        ordering = ["step", "entered_at", "id"]

    def __str__(self) -> str:
        return f"{self.name} = {self.text} {self.unit}".rstrip()


class InstrumentReading(AuditedModel):
    """Where a value read from a machine came from (execution/instruments.py): the reading the
    gateway stored, as it came, beside the value recorded in the recipe's unit. Append-only."""

    value = models.OneToOneField(StepValue, on_delete=models.PROTECT, related_name="reading")
    equipment = models.CharField(max_length=40, help_text="the unit's code")
    parameter = models.CharField(max_length=200)
    protocol = models.CharField(max_length=20)
    endpoint = models.TextField()
    tag = models.TextField()
    raw = models.CharField(max_length=200, help_text="the value as the device sent it")
    raw_unit = models.CharField(max_length=30, blank=True, help_text="the unit it came in")
    quality = models.CharField(max_length=10)
    status = models.TextField(blank=True, help_text="the device's own status code, as it came")
    source_time = models.DateTimeField(null=True, help_text="the device's time, when it sent one")
    gateway_time = models.DateTimeField(help_text="when the gateway received it")
    key = models.CharField(max_length=32, help_text="the stored reading's key (hex)")

    class Meta:
        ordering = ["value"]

    def __str__(self) -> str:
        return f"{self.equipment} {self.tag} = {self.raw} {self.raw_unit}".rstrip()


class Severity(models.TextChoices):
    INFO = "info", "Info"
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


class BatchException(AuditedModel):
    """Anything a reviewer must see, recorded the moment it happens."""

    batch = models.ForeignKey(Batch, on_delete=models.PROTECT, related_name="exceptions")
    step = models.ForeignKey(
        BatchStep, null=True, blank=True, on_delete=models.PROTECT, related_name="exceptions"
    )
    value = models.ForeignKey(
        StepValue, null=True, blank=True, on_delete=models.PROTECT, related_name="exceptions"
    )
    code = models.CharField(max_length=40, help_text="its type in the taxonomy, rules/exceptions.py")
    severity = models.CharField(max_length=10, choices=Severity.choices)
    blocks = models.BooleanField(default=False, help_text="execution stops until it is dispositioned")
    material = models.CharField(max_length=60, blank=True, help_text="container or lot it concerns")
    equipment = models.CharField(max_length=40, blank=True, help_text="equipment unit it concerns")
    message = models.TextField()
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "id"]
        permissions = [("disposition_exception", "Disposition batch exceptions")]

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    @property
    def type(self) -> exceptions.ExceptionType:
        return exceptions.classify(self.code)


class ProcessAlarm(AuditedModel):
    """What the judge of a process value said while its step ran (execution/monitoring.py, rules/alarms.py).

    One row per event (raised, changed, cleared, signal lost, signal back), kept as the gateway's
    judge said it; the raising ones wait for a person's acknowledgement, which is audited and
    which the step's completion waits for.
    """

    step = models.ForeignKey(BatchStep, on_delete=models.PROTECT, related_name="alarms")
    name = models.CharField(max_length=40, help_text="the monitored value's name in the recipe")
    label = models.CharField(max_length=200)
    event = models.CharField(max_length=20)
    level = models.CharField(max_length=20, help_text="in range, high, low, high-high or low-low")
    at = models.DateTimeField(help_text="when it began: the first value of it")
    value = models.DecimalField(max_digits=28, decimal_places=9, null=True, blank=True)
    extreme = models.DecimalField(max_digits=28, decimal_places=9, null=True, blank=True)
    limit = models.DecimalField(max_digits=28, decimal_places=9, null=True, blank=True)
    unit = models.CharField(max_length=30, blank=True)
    uncertain = models.BooleanField(default=False, help_text="judged on a value the device marked Uncertain")
    equipment = models.CharField(max_length=40)
    tag = models.CharField(max_length=300, blank=True, help_text="the source's address of the value")
    exception = models.ForeignKey(
        BatchException, null=True, blank=True, on_delete=models.PROTECT, related_name="alarms"
    )
    needs_acknowledgement = models.BooleanField(default=False)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    comment = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            # The gateway's judge may say the same thing twice (replayed after a restart): once kept.
            models.UniqueConstraint(
                fields=["step", "name", "event", "level", "at"], name="process_alarm_once"
            )
        ]
        permissions = [("acknowledge_alarm", "Acknowledge process alarms")]

    def __str__(self) -> str:
        return f"{self.label}: {self.event} {self.level}"


class ProcessTrend(AuditedModel):
    """A monitored value's course over its step, frozen into the record when the step completes.

    The gateway's raw readings are high-volume data outside the audit chain and subject to
    retention; the record keeps this copy instead (execution/monitoring.py ``trends_freeze``):
    the step's period in at most ``BUCKETS`` buckets, each with its lowest and highest value.
    """

    step = models.ForeignKey(BatchStep, on_delete=models.PROTECT, related_name="trends")
    name = models.CharField(max_length=40)
    label = models.CharField(max_length=200)
    unit = models.CharField(max_length=30)
    equipment = models.CharField(max_length=40)
    start = models.DateTimeField()
    end = models.DateTimeField()
    readings = models.PositiveIntegerField(help_text="readings stored for the period")
    usable = models.PositiveIntegerField(help_text="of those, Good or Uncertain values")
    minimum = models.DecimalField(max_digits=28, decimal_places=9, null=True, blank=True)
    maximum = models.DecimalField(max_digits=28, decimal_places=9, null=True, blank=True)
    buckets = models.JSONField(default=list, help_text="[start, lowest, highest] per bucket, in the unit")

    class Meta:
        ordering = ["step", "name"]
        constraints = [models.UniqueConstraint(fields=["step", "name"], name="process_trend_once")]

    def __str__(self) -> str:
        return f"{self.label} over {self.step_id}"


class Decision(models.TextChoices):
    ACCEPTED = "accepted", "Accepted: no impact on quality"
    DEVIATION = "deviation", "Escalated to a deviation"


class ExceptionDisposition(AuditedModel):
    """QA's decision on one exception, with its comment and signature; never changed, like the exception.

    It lives beside the exception rather than in the quality app because execution's own
    gate reads it: a blocking exception without a disposition stops the batch.
    """

    exception = models.OneToOneField(BatchException, on_delete=models.PROTECT, related_name="disposition")
    decision = models.CharField(max_length=20, choices=Decision.choices)
    comment = models.TextField()
    deviation_number = models.CharField(max_length=40, blank=True)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "id"]


# --- the records of the step kinds that have their own (sampling, produce, labelling) -------------
# Each is append-only in the database (triggers, like the values): a sample, a count or an
# examination result is never changed; a step signature binds them with the step's values
# (``execution.steprecords``). Output is recorded in materials (containers of the output lot, their
# PRODUCE ledger entries and label prints), named by the step's key.


class SampleSource(models.TextChoices):
    CONTAINER = "container", "Container"
    EQUIPMENT = "equipment", "Equipment"


class Sample(AuditedModel):
    """One sample taken on a sampling step (IPC-01, 21 CFR 211.188(b)(10)).

    Its code (``<batch>-S01``) is what the sample's label carries and what a laboratory result
    will point at: a result is a record of its own, never a field written onto the sample.
    """

    step = models.ForeignKey(BatchStep, on_delete=models.PROTECT, related_name="samples")
    code = models.CharField(max_length=60, unique=True)
    material_code = models.CharField(max_length=40, blank=True, help_text="blank: the in-process material")
    material_name = models.CharField(max_length=200)
    source_kind = models.CharField(max_length=20, choices=SampleSource.choices)
    source = models.CharField(max_length=60, help_text="the container or the unit sampled")
    lot = models.CharField(max_length=40, blank=True, help_text="the sampled container's lot")
    position = models.CharField(max_length=200, blank=True)
    quantity = models.DecimalField(max_digits=18, decimal_places=6)
    unit = models.CharField(max_length=30)
    planned_quantity = models.DecimalField(max_digits=18, decimal_places=6, help_text="as the recipe asks")
    test = models.CharField(max_length=200)
    method = models.CharField(max_length=60, blank=True)
    taken_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    taken_at = models.DateTimeField()

    class Meta:
        ordering = ["taken_at", "id"]

    def __str__(self) -> str:
        return self.code


class SampleLabelPrint(AuditedModel):
    """Every print of a sample's label (LBL-02): a reprint needs a reason and says so."""

    sample = models.ForeignKey(Sample, on_delete=models.PROTECT, related_name="prints")
    reprint = models.BooleanField(default=False)
    reason = models.TextField(blank=True)
    format = models.CharField(max_length=10, choices=[("pdf", "PDF")])
    content_sha256 = models.CharField(max_length=64)
    template = models.CharField(max_length=60, blank=True)  # as LabelPrint.template
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "id"]


class LabelIssue(AuditedModel):
    """Labels issued to a labelling step (21 CFR 211.125(b), 211.130): how many, what they say, a specimen.

    ``content`` is the label's data drawn from the batch's records; ``specimen_png`` the image
    rendered from it (base64), kept whole here and as a digest in the trail.
    """

    AUDIT_DIGEST = frozenset({"specimen_png"})

    step = models.ForeignKey(BatchStep, on_delete=models.PROTECT, related_name="label_issues")
    quantity = models.PositiveIntegerField(help_text="labels issued")
    content = models.JSONField()
    specimen_png = models.TextField(help_text="the specimen image, PNG as base64")
    specimen_sha256 = models.CharField(max_length=64, help_text="SHA-256 of the PNG bytes")
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "id"]


class LabelReconciliation(AuditedModel):
    """Labels issued against applied, destroyed and returned, judged against the recipe's limit (211.125(c))."""

    step = models.OneToOneField(BatchStep, on_delete=models.PROTECT, related_name="label_reconciliation")
    issued = models.PositiveIntegerField()
    applied = models.PositiveIntegerField()
    destroyed = models.PositiveIntegerField()
    returned = models.PositiveIntegerField()
    difference = models.IntegerField(help_text="issued − applied − destroyed − returned")
    allowed = models.DecimalField(
        max_digits=18, decimal_places=6, help_text="the largest difference accepted"
    )
    within = models.BooleanField()
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()


class LabelExamination(AuditedModel):
    """The examination of packaged and labelled units and its result per item (21 CFR 211.134)."""

    step = models.OneToOneField(BatchStep, on_delete=models.PROTECT, related_name="label_examination")
    units_examined = models.PositiveIntegerField()
    results = models.JSONField(help_text='[{"item": ..., "passed": true}] in the recipe\'s order')
    passed = models.BooleanField()
    comment = models.TextField(blank=True)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()
