"""The physical model (ISA-95/ISA-88): sites, equipment classes and units, and each unit's logbook.

Statuses and hold times are decided by ``rules/equipment.py``; a unit's
logbook is append-only in the database, like the audit trail.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from batchline.audit.models import AuditedModel
from batchline.rules import equipment as eq


class Site(AuditedModel):
    code = models.SlugField(max_length=20, unique=True)
    name = models.CharField(max_length=200)
    time_zone = models.CharField(max_length=64, default="UTC", help_text="IANA zone, for display.")
    address = models.TextField(blank=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} — {self.name}"


class EquipmentClass(AuditedModel):
    """A kind of equipment with the hold times its cleaning validation set (EQ-02)."""

    code = models.SlugField(max_length=40, unique=True, help_text="e.g. granulator, scale")
    name = models.CharField(max_length=200)
    dirty_hold_hours = models.PositiveIntegerField(
        null=True, blank=True, help_text="use end → cleaning start; empty: no limit"
    )
    clean_hold_hours = models.PositiveIntegerField(
        null=True, blank=True, help_text="cleaning end → next use; empty: no limit"
    )
    is_scale = models.BooleanField(default=False)
    # What a unit of the class is qualified to do (e.g. "granulate", "weigh"): recipes name it.
    capabilities = models.JSONField(default=list, blank=True)
    # A calibration or maintenance recorded on a unit sets its next due date this far ahead.
    calibration_interval_days = models.PositiveIntegerField(null=True, blank=True)
    maintenance_interval_days = models.PositiveIntegerField(null=True, blank=True)
    # Master data is never deleted: a retired class stays readable in every record that used it.
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["code"]
        verbose_name_plural = "equipment classes"

    def __str__(self) -> str:
        return self.name


class EquipmentStatus(models.TextChoices):
    CLEAN = eq.CLEAN, "Clean"
    IN_USE = eq.IN_USE, "In use"
    DIRTY = eq.DIRTY, "Dirty"
    CLEANING = eq.CLEANING, "Cleaning"
    MAINTENANCE = eq.MAINTENANCE, "Maintenance"
    OUT_OF_SERVICE = eq.OUT_OF_SERVICE, "Out of service"


class Equipment(AuditedModel):
    """One unit, found by the barcode on it. Status changes only through ``equipment.services``."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="equipment")
    code = models.CharField(max_length=40, unique=True, help_text="the barcode on the unit, e.g. GRAN-01")
    name = models.CharField(max_length=200)
    equipment_class = models.ForeignKey(EquipmentClass, on_delete=models.PROTECT, related_name="units")
    status = models.CharField(max_length=20, choices=EquipmentStatus.choices, default=EquipmentStatus.DIRTY)
    status_reason = models.TextField(blank=True, help_text="why it is out of service or in maintenance")
    current_batch = models.CharField(max_length=40, null=True, blank=True)
    in_use_since = models.DateTimeField(null=True, blank=True)
    last_batch = models.CharField(max_length=40, blank=True)
    last_product = models.CharField(max_length=200, blank=True)
    last_used_end = models.DateTimeField(null=True, blank=True)
    cleaned_at = models.DateTimeField(null=True, blank=True)
    calibration_due_at = models.DateTimeField(null=True, blank=True)
    maintenance_due_at = models.DateTimeField(null=True, blank=True)
    # Scales: where the device listens, what it weighs, and its daily check.
    host = models.CharField(max_length=200, blank=True)
    port = models.PositiveIntegerField(null=True, blank=True)
    capacity = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    minimum_weight = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    readability = models.DecimalField(
        max_digits=18, decimal_places=6, null=True, blank=True, help_text="the smallest step it shows (d)"
    )
    unit = models.CharField(max_length=20, blank=True)
    # A demo's or a test's scale: an MT-SICS simulator answers at host:port, started with the web
    # server outside production (batchline.simulation), and the booth may tell it what is on the pan.
    simulated = models.BooleanField(default=False)
    last_check_at = models.DateTimeField(null=True, blank=True)
    last_check_passed = models.BooleanField(default=False)
    # Retired: never claimed, weighed on or registered to a station again; its records stay.
    retired_at = models.DateTimeField(null=True, blank=True)
    # What the unit's PLC last reported of itself through the gateway (PackML state and unit mode,
    # rules/packml.py), written only when it changes (equipment.services.machine_report). Empty
    # until the first report: a unit that reports nothing has no machine-state gate.
    machine_state = models.SmallIntegerField(null=True, blank=True)
    machine_mode = models.SmallIntegerField(null=True, blank=True)
    machine_reported_at = models.DateTimeField(null=True, blank=True)
    machine_known = models.BooleanField(default=False, help_text="False while the gateway has lost it")

    class Meta:
        ordering = ["code"]
        verbose_name_plural = "equipment"
        permissions = [
            ("record_cleaning", "Record cleaning of equipment"),
            ("check_scale", "Record a scale's daily check"),
            ("write_logbook", "Write and correct equipment logbook notes"),
            (
                "maintain_equipment",
                "Record maintenance and calibration; take equipment out of and into service",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} — {self.name}"


class Station(AuditedModel):
    """A registered terminal of the floor (21 CFR 11.10(h)): where it is, and the instruments it may use.

    A request is from a station when its network address falls in the station's
    ``address`` (one address, or a network such as 10.20.1.0/28 for a booth's
    tablets on DHCP). Entries name the station they came from.
    """

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="stations")
    code = models.CharField(max_length=40, unique=True, help_text="e.g. BOOTH-01-T1")
    name = models.CharField(max_length=200)
    location = models.CharField(max_length=200, blank=True, help_text="room or line, as the plant names it")
    address = models.CharField(max_length=64, help_text="IP address or network (CIDR) of the terminal")
    # The instruments (scales) it may take readings from, by code: a list, so that the audit trail
    # holds every change of it with old and new values like any other field.
    devices = models.JSONField(default=list, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} — {self.name}"


class LogbookKind(models.TextChoices):
    USE_START = "use_start", "Use started"
    USE_END = "use_end", "Use ended"
    CLEANING_START = "cleaning_start", "Cleaning started"
    CLEANING_END = "cleaning_end", "Cleaning done"
    MAINTENANCE = "maintenance", "Maintenance"
    CALIBRATION = "calibration", "Calibration"
    CHECK = "check", "Scale check"
    STATUS = "status", "Status change"
    NOTE = "note", "Note"
    CORRECTION = "correction", "Correction"


class LogbookEntry(AuditedModel):
    """One line of a unit's logbook (LOG-01). Append-only in the database: a correction is a new entry."""

    equipment = models.ForeignKey(Equipment, on_delete=models.PROTECT, related_name="logbook")
    kind = models.CharField(max_length=20, choices=LogbookKind.choices)
    at = models.DateTimeField(help_text="server time")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    batch_number = models.CharField(max_length=40, blank=True)
    product = models.CharField(max_length=200, blank=True)
    text = models.TextField(blank=True)
    station = models.CharField(
        max_length=40, blank=True, help_text="the registered station it was entered at (21 CFR 11.10(h))"
    )
    corrects = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="corrections"
    )
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]
        verbose_name_plural = "logbook entries"
        indexes = [
            models.Index(fields=["equipment", "at"], name="logbook_equipment_at_idx"),
            # A trace finds the units its batches used by batch number (genealogy selectors).
            models.Index(fields=["batch_number"], name="logbook_batch_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.equipment_id} {self.kind} {self.at:%Y-%m-%d %H:%M}"
