"""Weigh and dispense: a stable reading from a suitable scale, inside tolerance, from a usable container.

The scale is read before any lock is taken (a scale may take seconds to
settle; the batch must not wait on it), and the reading is then judged under
the batch's and the source container's row locks at the server's time:
the container's gate (material, status, expiry, retest, stock), the scale's
(calibration, today's check, capacity, minimum weight), stability, unit, and
the tolerance around the target, scaled to the batch and adjusted for the
lot's potency where the recipe says so. Only then is anything written: the
dispensed container, two ledger entries naming the scale, and the step's value.
A manual weight (the scale is down) needs a reason and a second person's
signature, and raises an exception for review (WD-09).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils import timezone

from batchline.audit.services import Actor, record_create
from batchline.devices.mtsics import Reading, ScaleRefusal
from batchline.devices.scale import MtSicsScale
from batchline.equipment import stations
from batchline.equipment.models import Equipment
from batchline.equipment.selectors import scale_suitable
from batchline.labels.container import ContainerLabel, Dispense
from batchline.materials import services as stock
from batchline.materials.labels import container_label, template_for
from batchline.materials.models import Container, Material
from batchline.rules import gates
from batchline.rules import materials as material_rules
from batchline.rules.verdict import Reason, Verdict
from batchline.signatures.models import Meaning
from batchline.signatures.services import VerifiedSigner, signature_apply

from .charging import _label_mismatch, read_scan, required
from .models import Batch, BatchStep, StepState, StepValue
from .raising import exception_raise
from .scaling import plain, target_shown, tolerance_text


@dataclass(frozen=True)
class Weighing:
    """What the scale said (net and tare), or a manual weight with its reason and witness."""

    net: Decimal
    unit: str
    tare: Decimal | None
    device: str
    stable: bool = True
    manual_reason: str = ""
    witness: VerifiedSigner | None = None
    other_lot_reason: str = ""  # why a lot other than the first to expire (FEFO) is used
    typed: str = ""  # a manual weight as it was typed (read in the site's notation into ``net``)


def read_scale(code: str) -> tuple[Weighing | None, Reason | None]:
    """A stable net weight and the tare from the scale ``code``, over MT-SICS; or why there is none."""
    unit = Equipment.objects.filter(code=code.strip().upper()).first()
    if unit is None or not unit.host or not unit.port:
        return None, Reason(
            "SCALE_NOT_CONNECTED", f"Scale {code} has no connection configured: choose another."
        )
    try:
        with MtSicsScale(unit.host, unit.port, timeout=settings.SCALE_TIMEOUT_SECONDS) as scale:
            net: Reading = scale.stable_weight()
            tare: Reading = scale.tare_value()
    except ScaleRefusal as exc:
        return None, Reason(exc.code, f"Scale {unit.code}: {exc.message}")
    except OSError as exc:
        return None, Reason(
            "SCALE_UNREACHABLE", f"Scale {unit.code} cannot be reached ({exc.strerror or exc})."
        )
    tare_value = tare.value if tare.unit == net.unit else None
    return Weighing(net.value, net.unit, tare_value, f"{unit.code} #{net.serial}", stable=net.stable), None


def target_of(
    step: BatchStep, batch: Batch, container: Container | None
) -> tuple[Decimal, Decimal, Decimal, str]:
    """Target and window, scaled to the batch, and adjusted for the lot's potency if the recipe says so."""
    target, low, high, unit = required(step.spec, batch.ratio)
    potency = container.lot.potency if container is not None else None
    if step.spec["material"].get("potency_adjust") and potency:
        factor = Decimal(100) / Decimal(potency)
        target, low, high = (x * factor for x in (target, low, high))
    compensated = step.spec["material"].get("compensates")
    if compensated:
        # The filler gives way to what the active ingredient needed above its nominal (WD-04),
        # so the batch keeps its mass: nominal API + nominal filler = actual API + this.
        extra = _weighed_above_nominal(batch, compensated, unit)
        target, low, high = (x - extra for x in (target, low, high))
    return target, low, high, unit


def _weighed_above_nominal(batch: Batch, key: str, unit: str) -> Decimal:
    api = BatchStep.objects.filter(batch=batch, key=key).first()
    value = StepValue.objects.filter(step=api, name="dispensed").order_by("-id").first() if api else None
    if api is None or value is None or value.number is None:
        return Decimal(0)
    nominal, _low, _high, api_unit = required(api.spec, batch.ratio)
    return stock.in_unit(Decimal(value.number) - nominal, api_unit, unit)


def dispense(
    *, actor: Actor, batch: Batch, step: BatchStep, source: str, scale: str, weighing: Weighing, person: int
) -> tuple[Verdict, StepValue | None]:
    """Judge and record one dispense; the caller holds the batch lock and the transaction."""
    if step.spec.get("kind") != "weigh_dispense":
        return Verdict.of(Reason("NOT_A_WEIGHING_STEP", f"“{step.title}” does not weigh material.")), None
    if step.state != StepState.RUNNING:
        label = gates.STEP_STATE_LABELS.get(step.state, step.state)
        return Verdict.of(Reason("STEP_NOT_RUNNING", f"“{step.title}” is {label}: start it first.")), None
    if step.values.filter(name="dispensed").exists():
        return Verdict.of(Reason("ALREADY_DISPENSED", f"“{step.title}” has its container already.")), None
    read, problem = read_scan(source)
    if read is None or read.container_id is None:
        return Verdict.of(problem), None
    container = stock.container_locked(read.container_id)
    mismatch = _label_mismatch(read, container)
    if mismatch is not None:
        return Verdict.of(mismatch), None
    now = timezone.now()
    tz = timezone.get_current_timezone()
    material = step.spec["material"]
    verdict = material_rules.container_usable(
        container.view(), now, material_code=material["code"], batch_number=batch.number, tz=tz
    )
    target, low, high, unit = target_of(step, batch, container)
    reasons = list(verdict.reasons)
    manual = bool(weighing.manual_reason or weighing.witness or weighing.device == "manual")
    if manual:
        if not weighing.manual_reason.strip():
            reasons.append(
                Reason("REASON_REQUIRED", "A weight typed by hand needs the reason the scale was not used.")
            )
        if weighing.witness is None or weighing.witness.user.pk == person:
            reasons.append(
                Reason(
                    "WITNESS_REQUIRED", "A weight typed by hand is confirmed by a second person's signature."
                )
            )
    else:
        elsewhere = stations.instrument_reason(actor, scale)
        if elsewhere is not None:
            reasons.append(elsewhere)
        reasons += scale_suitable(code=scale, target=target, unit=unit, now=now).reasons
        if not weighing.stable:
            reasons.append(Reason("NOT_STABLE", "The scale did not settle: wait for a stable reading."))
    proposal = fefo_proposal(step, batch)
    other_lot = proposal is not None and proposal.lot_id != container.lot_id and not reasons
    if other_lot and not weighing.other_lot_reason.strip():
        assert proposal is not None
        reasons.append(
            Reason(
                "FEFO_REASON_REQUIRED",
                f"Lot {proposal.lot.number} expires first (container {proposal.code}): "
                f"give the reason to use lot {container.lot.number} instead.",
            )
        )
    if reasons:
        return Verdict(tuple(reasons)), None
    try:
        net = stock.in_unit(weighing.net, weighing.unit, unit)
    except stock.MaterialRefused as exc:
        return exc.verdict, None
    if not low <= net <= high:
        return (
            Verdict.of(
                Reason(
                    "OUT_OF_TOLERANCE",
                    f"{plain(net)} {unit} weighed; the target is {target_shown(target, low, high)} {unit} "
                    f"({tolerance_text(target, low, high, unit)}): "
                    "adjust and weigh again.",
                )
            ),
            None,
        )
    net_in_container_unit = stock.in_unit(net, unit, container.unit)
    if net_in_container_unit > container.quantity:
        return (
            Verdict.of(
                Reason(
                    "NOT_ENOUGH_MATERIAL",
                    f"Container {container.code} holds {plain(container.quantity)} {container.unit}, "
                    f"less than the {plain(net)} {unit} weighed: the ledger and the container disagree; call QA.",
                )
            ),
            None,
        )
    dispensed = stock.container_dispense(
        actor=actor,
        source=container,
        net=net_in_container_unit,
        tare=weighing.tare,
        batch_number=batch.number,
        step_key=step.key,
        device="manual" if manual else weighing.device,
        at=now,
        reason=weighing.manual_reason,
    )
    value = record_create(
        StepValue(
            step=step,
            name="dispensed",
            label=f"Dispensed into {dispensed.code} from {container.code} (lot {container.lot.number})",
            source="entered",
            # What was typed, kept with the number read from it, where it is in the recorded unit.
            text=weighing.typed.strip()
            if manual and weighing.typed.strip() and weighing.unit == unit
            else plain(net),
            number=net,
            unit=unit,
            in_specification=True,
            entered_by_id=person,
            entered_at=now,
            station=actor.station,
            reason=weighing.manual_reason,
        ),
        actor=actor,
    )
    if manual and weighing.witness is not None:
        signature_apply(
            signer=weighing.witness,
            meaning=Meaning.VERIFIED,
            record=value,
            content={
                "container": dispensed.code,
                "net": plain(net),
                "unit": unit,
                "reason": weighing.manual_reason,
            },
            actor=actor,
            comment=weighing.manual_reason,
        )
    if other_lot:
        assert proposal is not None
        exception_raise(
            batch,
            actor=actor,
            code="FEFO_OVERRIDE",
            step=step,
            value=value,
            material=container.code,
            message=f"Lot {container.lot.number} used instead of lot {proposal.lot.number}, which expires "
            f"first: {weighing.other_lot_reason}",
        )
    return Verdict(), value


def fefo_proposal(step: BatchStep, batch: Batch) -> Container | None:
    """The container to weigh from first: released, unexpired, the first to expire (MAT-04), holding
    enough for this weighing.

    A weighing takes from one container, so a container is a candidate only if it holds the
    lowest weight the weighing accepts from it (its own lot's potency counts): a nearly empty
    drum of an earlier lot is not the one the operator must take first.
    """
    material = Material.objects.filter(code=step.spec["material"]["code"]).first()
    if material is None:
        return None
    candidates = stock.usable_containers(material, batch_number=batch.number).exclude(
        dispensed_for=batch.number
    )
    for candidate in candidates.iterator(chunk_size=20):
        _target, low, _high, unit = target_of(step, batch, candidate)
        if candidate.quantity >= stock.in_unit(low, unit, candidate.unit):
            return candidate
    return None


def completion_reasons(step: BatchStep) -> list[Reason]:
    """A weighing completes with its container weighed out and labelled (211.101(b)(4), WD-07)."""
    if step.spec.get("kind") != "weigh_dispense":
        return []
    if not step.values.filter(name="dispensed").exists():
        return [Reason("NOT_DISPENSED", f"Weigh the material for “{step.title}” first.")]
    unlabelled = list(
        Container.objects.filter(
            dispensed_for=step.batch.number,
            ledger__kind="dispense",
            ledger__step_key=step.key,
            ledger__quantity__gt=0,
            prints__isnull=True,
        )
        .distinct()
        .values_list("code", flat=True)
    )
    if unlabelled:
        return [
            Reason(
                "DISPENSED_NOT_LABELLED",
                f"Print the label of {', '.join(unlabelled)} and put it on the container first.",
            )
        ]
    return []


def dispensed_label(container: Container, batch: Batch, *, print_count: int) -> ContainerLabel:
    """The label of a container weighed out for ``batch``: its own label plus what it is for and who
    weighed it (211.101(b)(4): the batch, its product; (c)-(d): who dispensed it)."""
    entry = container.ledger.select_related("user").filter(quantity__gt=0).order_by("id").first()
    dispense = Dispense(
        batch=batch.number,
        product_name=batch.recipe.product.name,
        strength="",
        dispensed_by=entry.user.printed_name if entry else "",
        dispensed_at=entry.at if entry else timezone.now(),
    )
    return dataclasses.replace(
        container_label(container, print_count=print_count),
        dispense=dispense,
        template=template_for("dispensed"),
    )


def live_reading(code: str, *, actor: Actor) -> dict[str, Any]:
    """What the booth screen shows while the operator weighs (SI: stable or not), never recorded.

    Not from a scale the station may not use: the screen would show a weight it cannot take."""
    elsewhere = stations.instrument_reason(actor, code)
    if elsewhere is not None:
        return {"error": elsewhere.message}
    unit = Equipment.objects.filter(code=code).first()
    if unit is None or not unit.host or not unit.port:
        return {"error": f"Scale {code} has no connection configured."}
    try:
        with MtSicsScale(unit.host, unit.port, timeout=settings.SCALE_TIMEOUT_SECONDS) as scale:
            r = scale.immediate_weight()
    except ScaleRefusal as exc:
        return {"error": exc.message}
    except OSError:
        return {"error": f"Scale {code} cannot be reached."}
    # As the scale shows it, with its own decimals (1500.0 g, not 1500 g).
    return {"value": str(r.value), "unit": r.unit, "stable": r.stable, "serial": r.serial}
