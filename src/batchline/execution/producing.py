"""Output: the operator records what the batch made, container by container (GEN-01, 211.188(b)(7)).

Each entry is a new container of the batch's output lot with its PRODUCE ledger entry naming the
step (``materials.services.lot_produce``, the path ``batch_produce`` and the API take too), and
its own label, printed and logged like any container label (LBL-02). When the step completes it
records the total, in the recipe's unit, as the named value the recipe gives it, so a formula
and an operation's yield can use it like any other value; that value is computed from the
containers, never typed.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db.models import Exists, OuterRef
from django.utils import timezone

from batchline.audit.services import Actor
from batchline.configuration import selectors as configuration
from batchline.labels.container import ContainerLabel, ContainerStatus
from batchline.materials import services as stock
from batchline.materials.labels import template_for
from batchline.materials.models import Container, LabelPrint, LedgerEntry, Movement
from batchline.materials.selectors import output_lot
from batchline.rules import gates
from batchline.rules.numbers import NotANumber, read
from batchline.rules.verdict import Reason, Verdict

from .models import Batch, BatchStep, StepState


def _entries(step: BatchStep) -> Any:
    return LedgerEntry.objects.filter(
        batch_number=step.batch.number, step_key=step.key, kind=Movement.PRODUCE
    )


def produce(
    *, actor: Actor, batch: Batch, step: BatchStep, quantity: str
) -> tuple[Verdict, list[Container] | None]:
    """One container of output; the caller holds the batch lock and the transaction."""
    if step.spec.get("kind") != "produce":
        return Verdict.of(Reason("WRONG_STEP_KIND", f"“{step.title}” records no output.")), None
    if step.state != StepState.RUNNING:
        label = gates.STEP_STATE_LABELS.get(step.state, step.state)
        return Verdict.of(Reason("STEP_NOT_RUNNING", f"“{step.title}” is {label}: start it first.")), None
    lot = output_lot(batch.number)
    if lot is None:
        return Verdict.of(
            Reason("NO_OUTPUT_LOT", f"Batch {batch.number} has no output lot to produce into.")
        ), None
    try:
        number = read(quantity, configuration.notation())
    except NotANumber as exc:
        return Verdict.of(Reason("NOT_A_NUMBER", f"Quantity produced: {exc}.")), None
    try:
        made = stock.lot_produce(
            actor=actor, lot=lot, quantities=[number], unit=step.spec["produce"]["unit"], step_key=step.key
        )
    except stock.MaterialRefused as exc:
        return exc.verdict, None
    return Verdict(), made


def total(step: BatchStep) -> Decimal:
    """What the step has produced so far, in the recipe's unit (one query)."""
    unit = step.spec["produce"]["unit"]
    found = Decimal(0)
    for quantity, entry_unit in _entries(step).values_list("quantity", "unit"):
        found += stock.in_unit(Decimal(quantity), entry_unit, unit)
    return found


def containers(step: BatchStep) -> list[Container]:
    """The step's containers, each with ``printed`` (whether its label has been printed)."""
    codes = _entries(step).values("container_id")
    return list(
        Container.objects.filter(pk__in=codes)
        .annotate(printed=Exists(LabelPrint.objects.filter(container=OuterRef("pk"))))
        .order_by("code")
    )


def completion_reasons(step: BatchStep) -> list[Reason]:
    """A produce step completes with output recorded and every container's label printed."""
    if step.spec.get("kind") != "produce":
        return []
    made = containers(step)
    if not made:
        return [
            Reason("NOTHING_PRODUCED", f"Record the output of “{step.title}” container by container first.")
        ]
    unprinted = [c.code for c in made if not c.printed]  # type: ignore[attr-defined]
    if unprinted:
        return [Reason("OUTPUT_NOT_LABELLED", f"Print the label of {', '.join(unprinted)} first.")]
    return []


def output_label(container: Container, *, print_count: int) -> ContainerLabel:
    """The label of a container of output, from its records: product, batch (its lot), quantity, expiry."""
    lot, material = container.lot, container.lot.material
    return ContainerLabel(
        material_code=material.code,
        material_name=material.name,
        lot=lot.number,
        container_id=container.code,
        quantity=Decimal(container.quantity),
        unit=container.unit,
        status=ContainerStatus(lot.status),
        gtin=material.gtin or None,
        tare=container.tare,
        expiry=lot.expires_at,
        print_count=print_count,
        printed_at=timezone.now(),
        zone=timezone.get_current_timezone(),
        template=template_for("output"),
    )
