"""What a container's label says, from its records (21 CFR 211.80, 211.101; labels/container.py renders it).

One place for the pages, the API and the execution services: a received, returned or dispensed
container's label is built from its lot, material and ledger, never typed.
"""

from __future__ import annotations

from decimal import Decimal

from django.utils import timezone

from batchline.labels.container import ContainerLabel, ContainerStatus, Returned, Template

from .models import Container, LabelTemplate


def template_for(label: str) -> Template | None:
    """The approved template in force for a label (labels/template.py LABELS), or None: the built-in one."""
    row = LabelTemplate.objects.filter(label=label, retired_at__isnull=True).first()
    return Template(row.code, row.version, row.title, row.statement) if row is not None else None


def template_reference(template: Template | None) -> str:
    """What a print record keeps of the template: ``CONT-01 v2``, or empty for the built-in heading."""
    return template.reference if template is not None else ""


def container_label(container: Container, *, print_count: int) -> ContainerLabel:
    """The label of ``container`` as it would print now (its ``print_count``-th print)."""
    lot, material = container.lot, container.lot.material
    returned = None
    if container.returned_from:  # what came back from a batch says so, with who returned it and when
        first = container.ledger.select_related("user").order_by("id").first()
        returned = Returned(
            batch=container.returned_from,
            returned_by=first.user.printed_name if first else "",
            returned_at=container.created_at,
        )
    return ContainerLabel(
        material_code=material.code,
        material_name=material.name,
        lot=lot.number,
        container_id=container.code,
        # As people write it: the ledger keeps six decimals, a label shows the weight (0.5013 kg).
        quantity=Decimal(container.quantity).normalize(),
        unit=container.unit,
        status=ContainerStatus(lot.status),
        gtin=material.gtin or None,
        supplier_lot=lot.supplier_lot or None,
        tare=container.tare,
        expiry=lot.expires_at,
        retest=lot.retest_at,
        received_on=timezone.localtime(lot.received_at).date(),
        returned=returned,
        print_count=print_count,
        printed_at=timezone.now(),
        zone=timezone.get_current_timezone(),
        template=template_for("returned" if returned is not None else "container"),
    )
