"""The finished product's label (21 CFR 211.125, 211.130): what a labelling step issues, and its specimen.

Every field is drawn from the batch's records by the caller (LBL-01: never typed): the product
from the recipe, the batch number, the quantity per container from the recipe's labelling
block, the expiry from the output lot, the storage conditions from the product's material.
The barcode is a GS1 DataMatrix with (01) GTIN, (17) expiry and (10) batch when the product has
a GTIN, else a plain one holding the batch number.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from batchline.labels.card import Card
from batchline.labels.container import Barcode, LabelError, Template, decimal_text
from batchline.labels.gs1 import (
    AI_EXPIRY,
    AI_GTIN,
    AI_LOT,
    alphanumeric_problem,
    element_string,
    gtin_normalize,
    hri,
    yymmdd,
)


@dataclass(frozen=True, slots=True)
class ProductLabel:
    product_code: str
    product_name: str
    batch: str
    quantity: Decimal  # per container
    unit: str
    expiry: dt.datetime | None
    storage: str = ""
    gtin: str | None = None
    zone: dt.tzinfo = field(default=dt.UTC)
    template: Template | None = None

    def __post_init__(self) -> None:
        for name in ("product_code", "product_name", "unit"):
            if not getattr(self, name).strip():
                raise LabelError(f"The product label needs a {name.replace('_', ' ')}.")
        problem = alphanumeric_problem(self.batch, what="batch number")
        if problem:
            raise LabelError(problem)
        if not self.quantity.is_finite() or self.quantity <= 0:
            raise LabelError(f"The quantity per container must be more than zero, not {self.quantity}.")
        if self.expiry is not None and self.expiry.utcoffset() is None:
            raise LabelError("Times on a label must carry their time zone.")
        if self.gtin is not None:
            try:
                object.__setattr__(self, "gtin", gtin_normalize(self.gtin))
            except ValueError as exc:
                raise LabelError(str(exc)) from None

    def expiry_text(self) -> str:
        return self.expiry.astimezone(self.zone).strftime("%Y-%m-%d") if self.expiry else "none"

    def barcode(self) -> Barcode:
        if self.gtin is None:
            return Barcode(data=self.batch, gs1=False, hri=self.batch)
        elements = [(AI_GTIN, self.gtin)]
        if self.expiry is not None:
            elements.append((AI_EXPIRY, yymmdd(self.expiry.astimezone(self.zone).date())))
        elements.append((AI_LOT, self.batch))
        return Barcode(data=element_string(elements), gs1=True, hri=hri(elements))

    def lines(self) -> tuple[tuple[str, str], ...]:
        return (
            ("Code", self.product_code),
            ("Batch", self.batch),
            ("Contents", f"{decimal_text(self.quantity)} {self.unit}"),
            ("Expiry", self.expiry_text()),
            ("Storage", self.storage or "see the product's storage conditions"),
        )

    def card(self, *, specimen: bool = False) -> Card:
        return Card(
            "FINISHED PRODUCT",
            self.product_name,
            self.lines(),
            self.barcode(),
            "SPECIMEN" if specimen else "",
            self.template,
        )

    def content(self) -> dict[str, Any]:
        """What the label says, JSON-ready: the record keeps it with the labels issued."""
        barcode = self.barcode()
        return {
            "product_code": self.product_code,
            "product_name": self.product_name,
            "batch": self.batch,
            "quantity": decimal_text(self.quantity),
            "unit": self.unit,
            "expiry": self.expiry.astimezone(dt.UTC).isoformat() if self.expiry else None,
            "expiry_printed": self.expiry_text(),
            "storage": self.storage,
            "gtin": self.gtin,
            "barcode": barcode.hri,
            "gs1": barcode.gs1,
            "template": self.template.reference if self.template else None,
            "title": self.template.title if self.template else "FINISHED PRODUCT",
            "statement": self.template.statement if self.template else "",
        }
