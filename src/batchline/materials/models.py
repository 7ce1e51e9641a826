"""Materials, lots, containers and the inventory ledger (ISA-95 material model).

A container's quantity is what its ledger says: it changes only together with
a ledger entry, in the same transaction, under the container's row lock, and
`batchline audit verify` replays both. The ledger and the label log are
append-only in the database, like the audit trail.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from batchline.audit.models import AuditedModel
from batchline.equipment.models import Site
from batchline.rules import materials as rules


class MaterialKind(models.TextChoices):
    API = "api", "Active ingredient"
    EXCIPIENT = "excipient", "Excipient"
    PACKAGING = "packaging", "Packaging"
    INTERMEDIATE = "intermediate", "Intermediate"
    FINISHED = "finished", "Finished product"


class Material(AuditedModel):
    site = models.ForeignKey(Site, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    code = models.CharField(max_length=40, unique=True, help_text="item code")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=MaterialKind.choices)
    unit = models.CharField(max_length=30, help_text="base unit of measure")
    storage = models.CharField(max_length=200, blank=True, help_text="storage conditions")
    shelf_life_days = models.PositiveIntegerField(null=True, blank=True)
    retest_days = models.PositiveIntegerField(null=True, blank=True)
    gtin = models.CharField(max_length=14, null=True, blank=True, unique=True)
    # Lots of this material carry an assay (% of label claim): a receipt without one is refused.
    potency_required = models.BooleanField(default=False)
    # Master data is never deleted: a retired material is received no more; its lots and records stay.
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["code"]
        permissions = [
            ("receive_material", "Receive material, print and reprint labels"),
            ("disposition_lot", "Release, reject, block lots and extend retest dates"),
            (
                "return_material",
                "Return to stock or waste what is left of material dispensed for a batch",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class LotStatus(models.TextChoices):
    QUARANTINE = rules.QUARANTINE, "Quarantine"
    RELEASED = rules.RELEASED, "Released"
    REJECTED = rules.REJECTED, "Rejected"
    BLOCKED = rules.BLOCKED, "Blocked"


class Lot(AuditedModel):
    material = models.ForeignKey(Material, on_delete=models.PROTECT, related_name="lots")
    number = models.CharField(max_length=40, help_text="receiving or control number")
    supplier = models.CharField(max_length=200, blank=True)
    supplier_lot = models.CharField(max_length=60, blank=True)
    status = models.CharField(max_length=20, choices=LotStatus.choices, default=LotStatus.QUARANTINE)
    received_at = models.DateTimeField()
    # Empty only for a batch's output lot whose expiry is not known yet: counted from the start
    # of manufacture by the product's shelf life, or set by QA where the master data has none.
    # Such a lot is not usable (rules.materials.lot_usable); an expiry is never made up.
    expires_at = models.DateTimeField(null=True, blank=True)
    retest_at = models.DateTimeField(null=True, blank=True)
    potency = models.DecimalField(
        max_digits=7, decimal_places=3, null=True, blank=True, help_text="assay, % of label claim"
    )
    # The genealogy edge batch → output lot; blank for a received lot. Indexed: the backward
    # trace joins a lot to the consumptions of the batch that made it, level by level.
    produced_by_batch = models.CharField(
        max_length=40, blank=True, default="", db_index=True, help_text="batch number, for an output lot"
    )

    class Meta:
        ordering = ["material", "expires_at", "number"]
        constraints = [models.UniqueConstraint(fields=["material", "number"], name="lot_number_unique")]
        indexes = [
            models.Index(fields=["number"]),
            # A recall starts from the supplier's lot number (genealogy selectors).
            models.Index(fields=["supplier_lot"], name="lot_supplier_lot_idx"),
        ]
        permissions = [("trace_lot", "Trace lot genealogy and run recall queries")]

    def __str__(self) -> str:
        return f"{self.number} ({self.material.code})"

    def view(self) -> rules.LotView:
        return rules.LotView(
            number=self.number,
            material_code=self.material.code,
            material_name=self.material.name,
            status=self.status,
            expires_at=self.expires_at,
            retest_at=self.retest_at,
        )


class Container(AuditedModel):
    code = models.CharField(max_length=40, unique=True, help_text="the id on the label, e.g. C-000123")
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="containers")
    quantity = models.DecimalField(max_digits=18, decimal_places=6, help_text="net, as the ledger says")
    unit = models.CharField(max_length=30)
    tare = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    location = models.CharField(max_length=60, blank=True)
    reserved_for = models.CharField(max_length=40, null=True, blank=True, help_text="batch number")
    dispensed_for = models.CharField(max_length=40, null=True, blank=True, help_text="batch number")
    # A container of stock that holds what came back from a batch's dispensed container (its
    # ``source``): its label says so, and the batch's record lists it.
    returned_from = models.CharField(
        max_length=40, null=True, blank=True, db_index=True, help_text="batch number, for a return to stock"
    )
    source = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="dispensed"
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code

    def view(self) -> rules.ContainerView:
        return rules.ContainerView(
            code=self.code,
            lot=self.lot.view(),
            quantity=self.quantity,
            unit=self.unit,
            reserved_for=self.reserved_for,
            dispensed_for=self.dispensed_for,
        )


class Movement(models.TextChoices):
    RECEIPT = "receipt", "Receipt"
    DISPENSE = "dispense", "Dispense"
    CONSUME = "consume", "Consume"
    PRODUCE = "produce", "Produce"
    ADJUST = "adjust", "Adjust"
    # What is left of a batch's dispensed container: back to stock in a new container (two
    # entries, each naming the other container), or destroyed as waste (one signed entry).
    RETURN = "return", "Return to stock"
    DESTROY = "destroy", "Waste (destroyed)"


class LedgerEntry(AuditedModel):
    """One movement of one container; the balance after it makes a balance one indexed read."""

    container = models.ForeignKey(Container, on_delete=models.PROTECT, related_name="ledger")
    kind = models.CharField(max_length=20, choices=Movement.choices)
    quantity = models.DecimalField(max_digits=18, decimal_places=6, help_text="signed: + in, − out")
    unit = models.CharField(max_length=30)
    balance = models.DecimalField(max_digits=18, decimal_places=6, help_text="the container after it")
    batch_number = models.CharField(max_length=40, blank=True)
    step_key = models.CharField(max_length=40, blank=True)
    counterpart = models.ForeignKey(
        Container, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    device = models.CharField(max_length=80, blank=True, help_text="scale serial, or 'manual'")
    station = models.CharField(
        max_length=40, blank=True, help_text="the registered station it was entered at (21 CFR 11.10(h))"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["container", "id"]
        verbose_name_plural = "ledger entries"
        # A container's newest entry is one index descent, however long its history
        # (``ledger_balance``); with the foreign key's index alone PostgreSQL sorts all of
        # the container's entries (docs/performance.md).
        indexes = [models.Index(fields=["container", "-id"], name="ledger_container_newest_idx")]

    def __str__(self) -> str:
        return f"{self.container.code} {self.kind} {self.quantity} {self.unit}"


class Consumption(AuditedModel):
    """A genealogy edge: this much of this lot went into this batch (consumed lot → batch output)."""

    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="consumptions")
    container = models.ForeignKey(Container, on_delete=models.PROTECT, related_name="+")
    ledger = models.OneToOneField(LedgerEntry, on_delete=models.PROTECT, related_name="consumption")
    batch_number = models.CharField(max_length=40, db_index=True)
    step_key = models.CharField(max_length=40)
    quantity = models.DecimalField(max_digits=18, decimal_places=6)
    unit = models.CharField(max_length=30)
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "id"]


class LabelTemplate(AuditedModel):
    """A plant's label template (LBL-01): the heading and statement one kind of label prints.

    Master data under change control (masterdata/definitions.py): created, changed and
    retired only through a QA approver's signed approval; each approved change raises
    ``version``, and every print records the template and version it was printed to.
    At most one template in force per label; without one the built-in heading prints.
    """

    code = models.CharField(max_length=40, unique=True)
    name = models.CharField(max_length=200)
    label = models.CharField(max_length=20, help_text="which label it lays out (labels/template.py)")
    title = models.CharField(max_length=40, help_text="the heading printed")
    statement = models.CharField(max_length=60, blank=True, help_text="a handling or caution text printed")
    version = models.PositiveIntegerField(default=1)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} v{self.version}"


class LabelPrint(AuditedModel):
    """Every label printed, first or again (a reprint needs a reason and says so on the label)."""

    container = models.ForeignKey(Container, on_delete=models.PROTECT, related_name="prints")
    reprint = models.BooleanField(default=False)
    reason = models.TextField(blank=True)
    format = models.CharField(max_length=10, choices=[("zpl", "ZPL"), ("pdf", "PDF")])
    content_sha256 = models.CharField(max_length=64)
    # The approved template and version it was printed to ("CONT-01 v2"); empty: the built-in heading.
    template = models.CharField(max_length=60, blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "id"]


class Counter(models.Model):
    """A named sequence for label ids (not GMP data itself: the ids it hands out are audited)."""

    name = models.CharField(max_length=40, primary_key=True)
    value = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name} = {self.value}"
