"""A container's label printed: built from its records, rendered, logged (LBL-01, LBL-02).

One path for the Materials page, the remainders panel and the API, so each gets the same
label, the same print log and the same refusals. The label is built before the print is
logged: a record that cannot make a label (a lot number a GS1 barcode cannot carry) is
refused in words and nothing is logged, rather than failing half-way.
"""

from __future__ import annotations

from dataclasses import dataclass

from batchline.audit.services import Actor
from batchline.labels.container import LabelError
from batchline.labels.pdf import render_pdf
from batchline.labels.zpl import render_zpl

from . import services as stock
from .labels import container_label
from .models import Container, LabelPrint

FORMATS = {"pdf": "application/pdf", "zpl": "text/plain; charset=utf-8"}


@dataclass(frozen=True, slots=True)
class Printed:
    """What was printed: its print record (with the template it names) and the label itself."""

    record: LabelPrint
    content: bytes
    content_type: str


def container_label_print(*, actor: Actor, container: Container, fmt: str, reason: str = "") -> Printed:
    """Render ``container``'s label as ``fmt`` (pdf or zpl) and log the print; a reprint needs ``reason``.

    ``container`` comes with its lot and material. Raises ``MaterialRefused`` for a format
    or record that makes no label and ``ReasonRequired`` for a reprint without a reason;
    either way nothing is logged. The print record is written by
    ``services.label_print_record`` (one transaction, the container locked).
    """
    if fmt not in FORMATS:
        raise stock.MaterialRefused.because(
            "UNKNOWN_FORMAT", f"{fmt[:20]!r} is no label format: choose pdf or zpl."
        )
    try:
        label = container_label(container, print_count=container.prints.count() + 1)
        content = render_pdf(label) if fmt == "pdf" else render_zpl(label).encode()
    except LabelError as exc:
        raise stock.MaterialRefused.because(
            "LABEL_CANNOT_PRINT", f"The label of {container.code} cannot be printed: {exc}"
        ) from exc
    record = stock.label_print_record(
        actor=actor, container=container, label=label, fmt=fmt, content=content, reason=reason
    )
    return Printed(record=record, content=content, content_type=FORMATS[fmt])
