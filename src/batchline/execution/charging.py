"""Material identification and charge: scan a container, the server decides (MAT-, P11-06, DESIGN 6).

A scan is judged at the server's time under the batch's and the container's
row locks: right material, lot released, not expired, not past retest, stock,
not reserved for another batch. A refused scan writes nothing but its refusal
(an exception QA sees); an accepted one consumes up to what the step still
needs, writing the ledger entry and the genealogy edge with the step's value,
all in one transaction. The step completes only when the charged total is
within the step's tolerance of its (scaled) quantity.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from batchline.audit.services import Actor, record_create
from batchline.labels.gs1 import gtin_normalize
from batchline.labels.scan import Scan, ScanError, parse_scan
from batchline.materials import services as stock
from batchline.materials.models import Consumption, Container, Movement
from batchline.rules import gates
from batchline.rules import materials as material_rules
from batchline.rules.verdict import Reason, Verdict

from .models import BatchStep, StepState, StepValue
from .scaling import Ratio, plain, scaled


def read_scan(scan: str) -> tuple[Scan | None, Reason | None]:
    """What a keyboard-wedge scanner typed, as a container scan, or the reason it is not one."""
    try:
        read = parse_scan(scan)
    except ScanError as exc:
        return None, Reason(exc.code, str(exc))
    if read.container_id is None:
        shown = scan.strip()[:60]
        return None, Reason(
            "UNKNOWN_BARCODE",
            f"{shown!r} is not a container label Batchline knows: scan the container's label.",
        )
    return read, None


def container_code(scan: str) -> str | None:
    """The container id in a scan, or None (the screen uses it to tell containers from step codes)."""
    read, _ = read_scan(scan)
    return read.container_id if read else None


def _label_mismatch(read: Scan, container: Any) -> Reason | None:
    """A GS1 label's lot and GTIN must be the container's: a label on the wrong container is refused."""
    lot, material = container.lot, container.lot.material
    if read.lot is not None and read.lot != lot.number:
        return Reason(
            "LABEL_MISMATCH",
            f"The label says lot {read.lot}, but container {container.code} belongs to lot {lot.number}: "
            "do not use it; call QA.",
        )
    if read.gtin is not None and material.gtin and gtin_normalize(material.gtin) != read.gtin:
        return Reason(
            "LABEL_MISMATCH",
            f"The label's GTIN {read.gtin} is not that of {material.name}: do not use it; call QA.",
        )
    return None


def required(definition: Mapping[str, Any], ratio: Ratio) -> tuple[Decimal, Decimal, Decimal, str]:
    """The step's quantity scaled to the batch, and the lowest and highest total it accepts."""
    m = definition["material"]
    target = scaled(m["quantity"], ratio, m.get("scales", True))
    assert target is not None
    if m.get("tolerance_absolute") is not None:
        tolerance = Decimal(m["tolerance_absolute"])
    elif m.get("tolerance_percent") is not None:
        tolerance = target * Decimal(m["tolerance_percent"]) / 100
    else:
        tolerance = Decimal(0)
    return target, target - tolerance, target + tolerance, m["unit"]


def weighed_out(batch_number: str, step_key: str) -> list[Container]:
    """The containers a weigh_dispense step filled for the batch (each dispense fills one)."""
    return list(
        Container.objects.filter(
            dispensed_for=batch_number,
            ledger__kind=Movement.DISPENSE,
            ledger__step_key=step_key,
            ledger__quantity__gt=0,
        )
        .distinct()
        .order_by("code")
    )


def window(step: BatchStep, ratio: Ratio) -> tuple[Decimal, Decimal, Decimal, str]:
    """What this charge step must charge, and the lowest and highest total it accepts.

    A charge of what a weighing dispensed (``material.dispensed``) charges every container
    that weighing filled, whole: the weighing judged the quantity against its tolerance, the
    lot's potency and the filler's compensation, so the charge must not cut it to the nominal
    quantity (a potency-adjusted 50.2 kg would otherwise leave 0.2 kg behind).
    """
    m = step.spec["material"]
    if not m.get("dispensed"):
        return required(step.spec, ratio)
    unit = m["unit"]
    held = sum(
        (stock.in_unit(c.quantity, c.unit, unit) for c in weighed_out(step.batch.number, m["dispensed"])),
        Decimal(0),
    )
    target = charged(step) + held
    return target, target, target, unit


def charged(step: BatchStep) -> Decimal:
    """What has been charged into this step so far, in the step's unit."""
    unit = step.spec["material"]["unit"]
    total = Decimal(0)
    rows = Consumption.objects.filter(batch_number=step.batch.number, step_key=step.key)
    for row in rows.values("unit").annotate(q=Sum("quantity")):
        total += stock.in_unit(Decimal(row["q"]), row["unit"], unit)
    return total


def completion_reasons(step: BatchStep, ratio: Ratio) -> list[Reason]:
    """A material charge step completes only with its quantity charged, within tolerance."""
    if step.spec.get("kind") != "material_charge":
        return []
    dispensed = step.spec["material"].get("dispensed")
    if dispensed:
        return _dispensed_not_charged(step, dispensed)
    target, low, _high, unit = required(step.spec, ratio)
    done = charged(step)
    if done < low:
        return [
            Reason(
                "MATERIAL_NOT_CHARGED",
                f"{plain(done)} {unit} of {plain(target)} {unit} is charged: scan the next container.",
            )
        ]
    return []


def _dispensed_not_charged(step: BatchStep, weighing: str) -> list[Reason]:
    title = title_of(step, weighing)
    unit = step.spec["material"]["unit"]
    left = [c for c in weighed_out(step.batch.number, weighing) if c.quantity > 0]
    if left:
        return [
            Reason(
                "MATERIAL_NOT_CHARGED",
                f"{c.code} ({plain(stock.in_unit(c.quantity, c.unit, unit))} {unit} weighed out at “{title}”) "
                "is not charged yet: scan it.",
            )
            for c in left
        ]
    if charged(step) <= 0:
        return [
            Reason(
                "MATERIAL_NOT_CHARGED", f"Nothing weighed out at “{title}” is charged: scan its container."
            )
        ]
    return []


def title_of(step: BatchStep, key: str) -> str:
    """The title of the batch's step ``key`` (a charge names the weighing it takes from)."""
    title = BatchStep.objects.filter(batch_id=step.batch_id, key=key).values_list("title", flat=True).first()
    return title or key


def _not_weighed_out_here(step: BatchStep, container: Any, batch_number: str) -> Reason | None:
    """A charge of what a weighing dispensed takes only the containers that weighing filled."""
    weighing = step.spec["material"]["dispensed"]
    filled = weighed_out(batch_number, weighing)
    if any(c.pk == container.pk for c in filled):
        return None
    title = title_of(step, weighing)
    these = ", ".join(c.code for c in filled if c.quantity > 0)
    return Reason(
        "NOT_WEIGHED_OUT_HERE",
        f"Container {container.code} was not weighed out at “{title}” for batch {batch_number}: "
        + (f"scan {these}." if these else "weigh the material out first."),
    )


def scan_charge(
    *, actor: Actor, snap_batch: Any, step: BatchStep, scan: str, person: int
) -> tuple[Verdict, StepValue | None]:
    """Judge a scan and, if it passes, consume; the caller holds the batch lock and its transaction."""
    definition = step.spec
    if definition.get("kind") != "material_charge":
        return Verdict.of(Reason("NOTHING_TO_SCAN", f"“{step.title}” takes no scan.")), None
    if step.state != StepState.RUNNING:
        label = gates.STEP_STATE_LABELS.get(step.state, step.state)
        return Verdict.of(Reason("STEP_NOT_RUNNING", f"“{step.title}” is {label}: start it first.")), None
    read, problem = read_scan(scan)
    if read is None or read.container_id is None:
        return Verdict.of(problem), None
    with transaction.atomic(savepoint=False):
        container = stock.container_locked(read.container_id)
        mismatch = _label_mismatch(read, container)
        if mismatch is not None:
            return Verdict.of(mismatch), None
        whole = bool(definition["material"].get("dispensed"))
        if whole and (elsewhere := _not_weighed_out_here(step, container, snap_batch.number)):
            return Verdict.of(elsewhere), None
        target, _low, high, unit = window(step, snap_batch.ratio)
        now = timezone.now()
        verdict = material_rules.container_usable(
            container.view(),
            now,
            material_code=definition["material"]["code"],
            batch_number=snap_batch.number,
            tz=timezone.get_current_timezone(),
        )
        if not verdict.allowed:
            return verdict, None
        remaining = high - charged(step)
        if remaining <= 0:
            return (
                Verdict.of(
                    Reason(
                        "ALREADY_CHARGED",
                        f"{plain(target)} {unit} is charged already: complete the step.",
                    )
                ),
                None,
            )
        available = stock.in_unit(container.quantity, container.unit, unit)
        take = available if whole else min(available, remaining)
        take_in_container_unit = (
            container.quantity if take == available else stock.in_unit(take, unit, container.unit)
        )
        stock.container_consume(
            actor=actor,
            container=container,
            quantity=take_in_container_unit,
            batch_number=snap_batch.number,
            step_key=step.key,
            at=now,
        )
        value = record_create(
            StepValue(
                step=step,
                name="charged",
                label=f"Charged from {container.code} (lot {container.lot.number})",
                source="entered",
                text=f"{plain(take)}",
                number=take,
                unit=unit,
                in_specification=None,
                within_action=None,
                entered_by_id=person,
                entered_at=now,
                station=actor.station,
            ),
            actor=actor,
        )
        return Verdict(), value
