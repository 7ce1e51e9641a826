"""Equipment identification: scan the unit, the server decides, the logbook writes itself (EQ-01…05, LOG-02).

The scanned unit is claimed for the batch under its row lock (dirty,
expired-clean, busy, overdue, out of service or wrong class refuse it with
every reason); it stays in use until the batch ends (complete or aborted),
when it is released dirty and its dirty hold starts. Uses, releases and
refusals go to the unit's logbook and the batch's record without anyone
typing them twice.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from batchline.audit.services import Actor, record_create
from batchline.equipment import services as equipment
from batchline.equipment.models import Equipment
from batchline.labels.scan import ScanError, ScanKind, parse_scan
from batchline.rules import gates
from batchline.rules.verdict import Reason, Verdict

from . import rows
from .models import Batch, BatchStep, StepState, StepValue


def equipment_code(scan: str) -> tuple[str | None, Reason | None]:
    """The unit's code from its tag (``EQ:GRAN-01``) or as typed (``GRAN-01``)."""
    try:
        read = parse_scan(scan)
    except ScanError as exc:
        return None, Reason(exc.code, str(exc))
    if read.kind == ScanKind.EQUIPMENT and read.equipment_code:
        return read.equipment_code, None
    if read.kind == ScanKind.TEXT and read.text:
        return read.text.strip().upper(), None
    return None, Reason("NOT_EQUIPMENT", "That is not an equipment tag: scan the tag on the unit.")


def scan_equipment(
    *, actor: Actor, snap_batch: Batch, step: BatchStep, scan: str, person: int
) -> tuple[Verdict, StepValue | None]:
    """Claim the scanned unit for the batch; the caller holds the batch lock and the transaction."""
    if step.state != StepState.RUNNING:
        label = gates.STEP_STATE_LABELS.get(step.state, step.state)
        return Verdict.of(Reason("STEP_NOT_RUNNING", f"“{step.title}” is {label}: start it first.")), None
    code, problem = equipment_code(scan)
    if code is None:
        return Verdict.of(problem), None
    unit = equipment.equipment_claim(
        actor=actor,
        code=code,
        batch_number=snap_batch.number,
        product=rows.product_name(snap_batch),
        required_class=step.spec.get("equipment_class"),
        step=step.key,
    )
    value = record_create(
        StepValue(
            step=step,
            name="equipment",
            label=f"Equipment {unit.code}",
            source="entered",
            text=f"{unit.code} {unit.name}",
            unit="",
            entered_by_id=person,
            entered_at=timezone.now(),
            station=actor.station,
        ),
        actor=actor,
    )
    return Verdict(), value


def completion_reasons(step: BatchStep) -> list[Reason]:
    """An equipment step completes once a unit has been identified on it."""
    if step.spec.get("kind") != "equipment_id" or step.values.filter(name="equipment").exists():
        return []
    return [Reason("EQUIPMENT_NOT_IDENTIFIED", f"Scan the equipment for “{step.title}” first.")]


def release_all(batch: Batch, *, actor: Actor) -> list[Any]:
    """The batch has ended: every unit it holds is released dirty (its dirty hold starts now)."""
    units = Equipment.objects.filter(current_batch=batch.number).values_list("code", flat=True)
    return [equipment.equipment_release(actor=actor, code=code, batch_number=batch.number) for code in units]
