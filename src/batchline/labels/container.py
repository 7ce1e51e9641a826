"""What a container label says: for a received component container and for a dispensed one.

The fields follow what 21 CFR 211 asks a component container to carry (each field says
which paragraph). The label is built by a service from the records (LBL-01: drawn from
records, never typed) and rendered by zpl.py or pdf.py; nothing here reads a database.

The barcode on the label (WD-07: "a barcode for downstream verification"):

- with a GTIN: a GS1 DataMatrix holding (01) GTIN, (17) expiry date, (10) lot and
  (21) container id, in that order, so that only one separator is needed;
- without a GTIN: a plain DataMatrix holding the container id, because GS1 allows a lot
  or serial only next to a trade item number (GenSpecs 4.13, mandatory associations).

Either way a scan of it (scan.py) gives the container id back, and for the GS1 form also
the GTIN, lot and expiry date, equal to the label's (tests/labels hold this).
"""

from __future__ import annotations

import datetime as dt
import textwrap
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from batchline.labels.gs1 import (
    AI_EXPIRY,
    AI_GTIN,
    AI_LOT,
    AI_SERIAL,
    alphanumeric_problem,
    element_string,
    gtin_normalize,
    hri,
    yymmdd,
)
from batchline.labels.scan import container_id_match


class LabelError(ValueError):
    """Label content that cannot be printed as given; the message says which field and why."""


class ContainerStatus(StrEnum):
    """The lot's status as printed (211.80(d): "quarantined, approved, or rejected")."""

    QUARANTINE = "quarantine"
    RELEASED = "released"
    REJECTED = "rejected"
    BLOCKED = "blocked"


@dataclass(frozen=True, slots=True)
class Dispense:
    """For a dispensed container: what it was dispensed for, and by whom.

    211.101(b)(4): "Batch for which component was dispensed, including its product name,
    strength, and lot number" -> batch, product_name, strength.
    211.101(c) and (d): dispensing is supervised, each dispensed container is examined by a
    second person -> dispensed_by and verified_by (printed names); the verifier is None
    while the second-person check is still to come (the record, not the label, proves it).
    """

    batch: str  # the batch (lot) number of the batch dispensed for
    product_name: str
    strength: str
    dispensed_by: str
    dispensed_at: dt.datetime
    verified_by: str | None = None
    verified_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class Returned:
    """For a container of stock that holds what was left of a batch's dispensed container (WD-12).

    The label says where the material has been: the batch it was weighed out for and
    came back from, who returned it and when; the material is the lot's, as before.
    """

    batch: str
    returned_by: str
    returned_at: dt.datetime


STATEMENT_LINE = 18  # characters; the statement prints in the barcode column, two lines at most
STATEMENT_LINES = 2


def statement_lines(text: str) -> list[str]:
    """A template's statement as printed: wrapped at words into lines that fit the barcode column."""
    return textwrap.wrap(text, STATEMENT_LINE, break_long_words=True)


@dataclass(frozen=True, slots=True)
class Template:
    """The plant's approved label template a label is printed to (LBL-01), as master data holds it.

    The fields 21 CFR 211 asks for are not the template's to choose: a template gives the
    heading and a statement (a handling or caution text), and its code and version are
    printed small on every label, so a label on a drum names the approved template it
    was printed to. Without one, the built-in heading prints and no reference.
    """

    code: str
    version: int
    title: str
    statement: str = ""

    @property
    def reference(self) -> str:
        return f"{self.code} v{self.version}"


@dataclass(frozen=True, slots=True)
class Barcode:
    """What the label's DataMatrix encodes.

    ``data``: for GS1, the element string after the leading FNC1, with GS (0x1D) where FNC1
    separates fields; otherwise plain text. ``hri``: the text printed under the symbol.
    """

    data: str
    gs1: bool
    hri: str


@dataclass(frozen=True, slots=True)
class ContainerLabel:
    """The content of one container label. Times are aware; ``zone`` is the plant's, for printing.

    Field -> what asks for it:
    material_code, material_name: 211.101(b)(1) "component name or item code" (both printed).
    lot: 211.80(d) "a distinctive code for each lot in each shipment received", the
        receiving or control number of 211.101(b)(2) and 211.184(a).
    supplier_lot: 211.184(a) "the supplier's lot number(s) if known".
    container_id: 211.80(d) identifies "each container or grouping of containers"; MAT-05
        (unique ids for containers); carried in the barcode as the GS1 serial (AI 21).
    quantity, unit: 211.101(b)(3) "weight or measure in new container" (net).
    tare: the empty container's weight, so a check weighing can verify the net (211.101(c)(2)).
    status: 211.80(d) "each lot shall be appropriately identified as to its status".
    expiry, retest: 211.87 (approved components retested as appropriate) and the lot's
        expiry; printed with the time, the barcode carries the date (AI 17).
    received_on: 211.184(a) "the date of receipt".
    gtin: the supplier's trade item number (GS1 AI 01), when the material has one.
    dispense: 211.101(b)(4), (c), (d), see Dispense.
    returned: material returned to stock from a batch, see Returned (not with ``dispense``).
    print_count: LBL-02, 1 for the first print; above 1 the label is marked REPRINT.
    template: LBL-01, the approved template it is printed to (heading, statement, reference).
    211.122 governs the label stock as a labeling material (examination on receipt, separate
    storage, destroying obsolete labels) and 211.122(h) the printing devices; it adds no field.
    """

    material_code: str
    material_name: str
    lot: str
    container_id: str
    quantity: Decimal
    unit: str
    status: ContainerStatus
    gtin: str | None = None
    supplier_lot: str | None = None
    tare: Decimal | None = None
    expiry: dt.datetime | None = None
    retest: dt.datetime | None = None
    received_on: dt.date | None = None
    dispense: Dispense | None = None
    returned: Returned | None = None
    print_count: int = 1
    printed_at: dt.datetime | None = None
    zone: dt.tzinfo = field(default=dt.UTC)
    template: Template | None = None

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "status", ContainerStatus(self.status))
        except ValueError:
            raise LabelError(f"Status {self.status!r} is not one a label prints.") from None
        for name in ("material_code", "material_name", "unit"):
            if not getattr(self, name).strip():
                raise LabelError(f"The label needs a {name.replace('_', ' ')}.")
        for name, what in (("lot", "lot number"), ("container_id", "container id")):
            problem = alphanumeric_problem(getattr(self, name), what=what)
            if problem:
                raise LabelError(problem)
        if container_id_match(self.container_id) != self.container_id:
            raise LabelError(f"Container id {self.container_id!r} is not of the form C-000123.")
        if self.gtin is not None:
            try:
                object.__setattr__(self, "gtin", gtin_normalize(self.gtin))
            except ValueError as exc:
                raise LabelError(str(exc)) from None
        for name in ("quantity", "tare"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, Decimal) or not value.is_finite() or value < 0):
                raise LabelError(f"The {name} must be a Decimal of zero or more, not {value!r}.")
        if self.print_count < 1:
            raise LabelError("The print count starts at 1.")
        times = [self.expiry, self.retest, self.printed_at]
        if self.dispense is not None:
            times += [self.dispense.dispensed_at, self.dispense.verified_at]
            if not all(
                v.strip()
                for v in (self.dispense.batch, self.dispense.product_name, self.dispense.dispensed_by)
            ):
                raise LabelError(
                    "A dispensed container's label needs the batch, the product and who dispensed."
                )
            if (self.dispense.verified_by is None) != (self.dispense.verified_at is None):
                raise LabelError("A verification needs both who verified and when.")
        if self.returned is not None:
            if self.dispense is not None:
                raise LabelError("A container is either dispensed for a batch or returned from one.")
            if not (self.returned.batch.strip() and self.returned.returned_by.strip()):
                raise LabelError("A returned container's label needs the batch and who returned it.")
            times.append(self.returned.returned_at)
        if any(t is not None and t.utcoffset() is None for t in times):
            raise LabelError("Times on a label must carry their time zone.")

    @property
    def reprint(self) -> bool:
        return self.print_count > 1

    @property
    def expiry_date(self) -> dt.date | None:
        """The expiry as a calendar date in the plant's zone: the date AI 17 carries."""
        return self.expiry.astimezone(self.zone).date() if self.expiry else None

    def gs1_elements(self) -> tuple[tuple[str, str], ...]:
        """(AI, value) pairs for the GS1 barcode; empty without a GTIN (see the module docstring)."""
        if self.gtin is None:
            return ()
        elements = [(AI_GTIN, self.gtin)]
        if self.expiry_date is not None:
            elements.append((AI_EXPIRY, yymmdd(self.expiry_date)))
        elements += [(AI_LOT, self.lot), (AI_SERIAL, self.container_id)]
        return tuple(elements)

    def barcode(self) -> Barcode:
        elements = self.gs1_elements()
        if elements:
            return Barcode(data=element_string(elements), gs1=True, hri=hri(elements))
        return Barcode(data=self.container_id, gs1=False, hri=self.container_id)

    def local(self, moment: dt.datetime) -> str:
        """A time as printed: plant time with the zone's abbreviation, ``2027-01-31 14:05 CET``."""
        return moment.astimezone(self.zone).strftime("%Y-%m-%d %H:%M %Z")


def decimal_text(value: Decimal) -> str:
    """A quantity as printed: never with an exponent (``1E+1`` would be read wrongly on the floor)."""
    return format(value.copy_abs() if value.is_zero() else value, "f")  # and never "-0"


def label_lines(label: ContainerLabel) -> list[tuple[str, str]]:
    """The human-readable fields under the material name, as (caption, value), in print order.

    ZPL and PDF share it. A dispensed container's label leaves out the supplier's lot and the
    receipt date (211.101(b) does not ask for them; the record keeps them) to stay legible.
    """
    dispense = label.dispense
    lines = [("Item code", label.material_code), ("Lot", label.lot)]
    if label.supplier_lot and dispense is None:
        lines.append(("Supplier lot", label.supplier_lot))
    lines += [("Container", label.container_id), ("Net", f"{decimal_text(label.quantity)} {label.unit}")]
    if label.tare is not None:
        lines.append(("Tare", f"{decimal_text(label.tare)} {label.unit}"))
    lines.append(("Expiry", label.local(label.expiry) if label.expiry else "none"))
    if label.retest is not None:
        lines.append(("Retest", label.local(label.retest)))
    if label.received_on is not None and dispense is None:
        lines.append(("Received", label.received_on.isoformat()))
    if dispense is not None:
        verified = (
            f"{dispense.verified_by}  {label.local(dispense.verified_at)}"
            if dispense.verified_by and dispense.verified_at
            else "not yet"
        )
        lines += [
            ("For batch", dispense.batch),
            ("Product", f"{dispense.product_name} {dispense.strength}"),
            ("Dispensed", f"{dispense.dispensed_by}  {label.local(dispense.dispensed_at)}"),
            ("Verified", verified),
        ]
    if label.returned is not None:
        lines += [
            ("Returned from", f"batch {label.returned.batch}"),
            ("Returned", f"{label.returned.returned_by}  {label.local(label.returned.returned_at)}"),
        ]
    return lines
