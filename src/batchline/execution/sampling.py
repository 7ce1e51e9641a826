"""Sampling: each sample a record with its own code and label (IPC-01, 21 CFR 211.188(b)(10), 211.160(b)).

The recipe says what is sampled (a material by its code, or the batch's in-process material),
how much per sample (scaled or not), from where (a container whose label is scanned, or a unit
the batch is using), at which positions, for which test and method, and how many samples the
step takes. The operator names the source and the quantity actually taken; the server judges
them under the batch's lock (the container exists and holds that material for this batch, the
unit is claimed by this batch) and writes the sample. The step completes once every sample is
taken and has its label printed.

Each sample taken is published (``sample.taken``, ``outbox.events``) in its transaction: the LIMS
connection (``batchline.lims``, which execution never imports) writes the sample request to the
outbox there. The laboratory's results are records of their own in ``lims``, pointing at the
sample; where the recipe's ``result`` block says the step ``waits``, each sample's first result
is also recorded on the step as a value (:func:`result_fill`) and the step completes only once
every sample has one.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db.models import Exists, OuterRef
from django.utils import timezone

from batchline.audit.services import Actor, record_create
from batchline.configuration import selectors as configuration
from batchline.equipment.models import Equipment
from batchline.materials.models import Container
from batchline.outbox import events
from batchline.rules import gates
from batchline.rules.numbers import NotANumber, read
from batchline.rules.verdict import Reason, Verdict

from . import rows
from .charging import read_scan
from .identify import equipment_code
from .models import Batch, BatchStep, Sample, SampleLabelPrint, SampleSource, StepState, StepValue
from .scaling import plain, scaled

SAMPLE_TAKEN = "sample.taken"  # published with sample=, batch=, actor=

MAX_QUANTITY = Decimal("1e12")


def planned(step: BatchStep, batch: Batch) -> Decimal:
    """The quantity one sample should be, as the recipe asks, scaled to the batch where it says so."""
    spec = step.spec["sampling"]
    value = scaled(spec["quantity"], batch.ratio, spec.get("scales", False))
    assert value is not None
    return value


def taken(step: BatchStep) -> int:
    return Sample.objects.filter(step=step).count()


def _quantity(raw: str, unit: str) -> tuple[Decimal | None, Reason | None]:
    try:
        value = read(raw, configuration.notation())
    except NotANumber as exc:
        return None, Reason("NOT_A_NUMBER", f"Sample quantity: {exc}.")
    if not value.is_finite() or value <= 0:
        return None, Reason("NOT_POSITIVE", f"A sample is more than 0 {unit}, not {raw.strip()[:30]}.")
    if value >= MAX_QUANTITY or value.as_tuple().exponent < -6:  # type: ignore[operator]
        return None, Reason("NOT_A_NUMBER", f"Sample quantity {raw.strip()[:30]}: at most 6 decimals.")
    return value, None


def _container_source(batch: Batch, spec: dict[str, Any], scan: str) -> tuple[dict[str, str], Reason | None]:
    read, problem = read_scan(scan)
    if read is None or read.container_id is None:
        return {}, problem
    container = Container.objects.select_related("lot__material").filter(code=read.container_id).first()
    if container is None:
        return {}, Reason(
            "UNKNOWN_CONTAINER", f"No container {read.container_id} is known here: check the label."
        )
    material = container.lot.material
    wanted = spec.get("material")
    of_batch = batch.number in (
        container.dispensed_for,
        container.lot.produced_by_batch,
        container.reserved_for,
    )
    if wanted and material.code != wanted:
        return {}, Reason(
            "WRONG_MATERIAL",
            f"Container {container.code} holds {material.code} {material.name}, not {wanted}: sample the right one.",
        )
    if not wanted and not of_batch:
        return {}, Reason(
            "SAMPLE_SOURCE_NOT_OF_BATCH",
            f"Container {container.code} (lot {container.lot.number}) holds nothing of batch {batch.number}: "
            "sample the batch's own material.",
        )
    return {
        "source": container.code,
        "lot": container.lot.number,
        "material_code": material.code,
        "material_name": material.name,
    }, None


def _equipment_source(batch: Batch, spec: dict[str, Any], scan: str) -> tuple[dict[str, str], Reason | None]:
    code, problem = equipment_code(scan)
    if code is None:
        return {}, problem
    unit = Equipment.objects.filter(code__iexact=code).first()
    if unit is None:
        return {}, Reason("UNKNOWN_EQUIPMENT", f"No unit {code} is known here: scan the tag on the unit.")
    if unit.current_batch != batch.number:
        return {}, Reason(
            "EQUIPMENT_NOT_OF_BATCH",
            f"{unit.code} {unit.name} is not in use for batch {batch.number}: sample from the unit the batch is in.",
        )
    return {
        "source": unit.code,
        "lot": "",
        "material_code": spec.get("material") or "",
        "material_name": "",
    }, None


def take(
    *, actor: Actor, batch: Batch, step: BatchStep, source: str, position: str, quantity: str, person: int
) -> tuple[Verdict, Sample | None]:
    """Judge and record one sample; the caller holds the batch lock and the transaction."""
    if step.spec.get("kind") != "sampling":
        return Verdict.of(Reason("WRONG_STEP_KIND", f"“{step.title}” takes no samples.")), None
    if step.state != StepState.RUNNING:
        label = gates.STEP_STATE_LABELS.get(step.state, step.state)
        return Verdict.of(Reason("STEP_NOT_RUNNING", f"“{step.title}” is {label}: start it first.")), None
    spec = step.spec["sampling"]
    count = taken(step)
    if count >= int(spec.get("samples", 1)):
        return Verdict.of(
            Reason("SAMPLES_COMPLETE", f"All {count} samples of “{step.title}” are taken: complete the step.")
        ), None
    reasons: list[Reason] = []
    positions = spec.get("positions") or []
    position = position.strip()
    if positions and position not in positions:
        reasons.append(
            Reason("POSITION_REQUIRED", f"Say where the sample comes from: {', '.join(positions)}.")
        )
    value, problem = _quantity(quantity, spec["unit"])
    if problem:
        reasons.append(problem)
    where = _container_source if spec["source"] == SampleSource.CONTAINER else _equipment_source
    found, problem = where(batch, spec, source)
    if problem:
        reasons.append(problem)
    if reasons:
        return Verdict(tuple(reasons)), None
    assert value is not None
    product = rows.product_name(batch)
    sample = record_create(
        Sample(
            step=step,
            code=f"{batch.number}-S{_next_number(batch):02d}",
            material_code=found["material_code"],
            material_name=found["material_name"] or _material_name(found["material_code"], product),
            source_kind=spec["source"],
            source=found["source"],
            lot=found["lot"],
            position=position,
            quantity=value,
            unit=spec["unit"],
            planned_quantity=planned(step, batch),
            test=spec["test"],
            method=spec.get("method", ""),
            taken_by_id=person,
            taken_at=timezone.now(),
        ),
        actor=actor,
        reason=f"sample for {spec['test']}",
    )
    events.publish(SAMPLE_TAKEN, sample=sample, batch=batch, actor=actor)
    return Verdict(), sample


def _next_number(batch: Batch) -> int:
    """Samples are numbered per batch (under the batch's lock, so two never share a code)."""
    return Sample.objects.filter(step__batch=batch).count() + 1


def _material_name(code: str, product: str) -> str:
    if not code:
        return f"in-process material of {product}"
    from batchline.materials.models import Material

    material = Material.objects.filter(code=code).first()
    return material.name if material else code


def completion_reasons(step: BatchStep) -> list[Reason]:
    """A sampling step completes with every sample taken and each sample's label printed."""
    if step.spec.get("kind") != "sampling":
        return []
    wanted = int(step.spec["sampling"].get("samples", 1))
    samples = Sample.objects.filter(step=step).annotate(
        printed=Exists(SampleLabelPrint.objects.filter(sample=OuterRef("pk")))
    )
    found = list(samples.values_list("code", "printed"))
    if len(found) < wanted:
        return [
            Reason(
                "SAMPLES_NOT_TAKEN",
                f"{len(found)} of {wanted} samples are taken for “{step.title}”: take the next one.",
            )
        ]
    unprinted = [code for code, printed in found if not printed]
    if unprinted:
        return [Reason("SAMPLE_NOT_LABELLED", f"Print the label of sample {', '.join(unprinted)} first.")]
    if (step.spec["sampling"].get("result") or {}).get("waits"):
        filled = set(
            StepValue.objects.filter(step=step, sample__isnull=False).values_list("sample__code", flat=True)
        )
        awaited = [code for code, _printed in found if code not in filled]
        if awaited:
            return [
                Reason(
                    "RESULT_AWAITED",
                    f"The laboratory's result of sample {', '.join(awaited)} ({step.spec['sampling']['test']}) "
                    f"is not in yet: “{step.title}” completes once it is.",
                )
            ]
    return []


def waits_for(step: BatchStep, sample: Sample) -> bool:
    """Whether ``sample``'s result is to be recorded on its step: the step waits, runs, and has none yet."""
    result = (step.spec.get("sampling") or {}).get("result") or {}
    return (
        bool(result.get("waits"))
        and step.state == StepState.RUNNING
        and not StepValue.objects.filter(step=step, sample=sample).exists()
    )


def _person_of(actor: Actor) -> int:
    assert actor.id is not None, "a laboratory result is entered by the LIMS's interface user"
    return actor.id


def result_fill(
    *,
    actor: Actor,
    step: BatchStep,
    sample: Sample,
    number: Decimal,
    in_specification: bool | None,
    within_action: bool | None,
    reason: str,
) -> StepValue:
    """Record a sample's laboratory result on the step that waits for it, as judged by the caller
    (``lims.services``: converted into the recipe's unit and judged against its limits). The caller
    holds the batch's lock and the transaction, and raises the exception an out-of-limit value calls for."""
    definition = step.spec["sampling"]["result"]
    return record_create(
        StepValue(
            step=step,
            sample=sample,
            name=definition["name"],
            label=f"{definition['label']}, sample {sample.code}",
            source="laboratory",
            text=plain(number),
            number=number,
            unit=definition.get("unit", ""),
            in_specification=in_specification,
            within_action=within_action,
            critical=bool(definition.get("critical")),
            entered_by_id=_person_of(actor),
            entered_at=timezone.now(),
            station="",
        ),
        actor=actor,
        reason=reason,
        action="record",
    )


def describe(step: BatchStep, batch: Batch) -> dict[str, Any]:
    """What the screen shows of a sampling step (changes only with audited writes: cacheable)."""
    spec = step.spec["sampling"]
    return {
        "test": spec["test"],
        "method": spec.get("method", ""),
        "material": spec.get("material") or "in-process material",
        "quantity": plain(planned(step, batch)),
        "unit": spec["unit"],
        "wanted": int(spec.get("samples", 1)),
        "source": spec["source"],
        "positions": spec.get("positions") or [],
        "samples": list(Sample.objects.filter(step=step).prefetch_related("prints", "values").order_by("id")),
        "result": spec.get("result") or None,
    }
