"""A sample's label (IPC-01, 21 CFR 211.188(b)(10), 211.160(b)): the sample's code and what it is for.

Built by the caller from the sample's record; the DataMatrix holds the sample's code, the key a
laboratory result will be filed under.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from batchline.labels.card import Card
from batchline.labels.container import Barcode, LabelError, Template, decimal_text


@dataclass(frozen=True, slots=True)
class SampleLabel:
    code: str
    batch: str
    product_name: str
    material: str  # what was sampled, as the record names it
    quantity: Decimal
    unit: str
    test: str
    method: str
    source: str
    position: str
    taken_by: str
    taken_at: dt.datetime
    print_count: int = 1
    zone: dt.tzinfo = field(default=dt.UTC)
    template: Template | None = None

    def __post_init__(self) -> None:
        if not self.code.strip() or any(not (" " < c <= "~") for c in self.code):
            raise LabelError(f"Sample code {self.code!r} cannot be printed as a barcode.")
        if self.taken_at.utcoffset() is None:
            raise LabelError("Times on a label must carry their time zone.")
        if self.print_count < 1:
            raise LabelError("The print count starts at 1.")

    def card(self) -> Card:
        source = self.source + (f", {self.position}" if self.position else "")
        lines = (
            ("Sample", self.code),
            ("Batch", f"{self.batch} {self.product_name}"),
            ("Material", self.material),
            ("Quantity", f"{decimal_text(self.quantity)} {self.unit}"),
            ("Test", f"{self.test} {self.method}".strip()),
            ("From", source),
            (
                "Taken",
                f"{self.taken_by}  {self.taken_at.astimezone(self.zone).strftime('%Y-%m-%d %H:%M %Z')}",
            ),
        )
        marker = f"REPRINT {self.print_count}" if self.print_count > 1 else ""
        barcode = Barcode(self.code, gs1=False, hri=self.code)
        return Card("SAMPLE", self.test, lines, barcode, marker, self.template)
