"""Inputs read from a machine instead of typed (issue 15): "take reading", or typed by hand with a
reason and a second person's signature.

A recipe input with a ``device`` (recipes/document.py, FromDevice) names the unit (an earlier
equipment step identified it) and the parameter whose tag the gateway reads. Taking the reading
records the gateway's latest stored value of that tag as the step's value, converted to the
input's unit and judged against its limits like any value, with where it came from (unit,
protocol, endpoint, tag, the device's and the gateway's times, quality, the value as sent) in an
append-only :class:`InstrumentReading` that the step's signatures bind. A reading is taken only
when it can be trusted: not Bad or Stale, a number, current (received within the input's
``max_age_seconds``, or its connection reported alive that recently: a report-by-exception source
sends nothing while the value holds). An Uncertain reading is recorded and flagged for review.

A value typed instead is recorded as ``manual``: it needs the reason the device was not used and
a second person's signature, and raises an exception for review, as a hand-typed weight does.
A value once recorded is changed only by a correction (``corrections``), which for such an input
needs the same second person. Execution never imports the gateway: the gateway app offers its
readings through :data:`reading_source`, as it offers its series to ``monitoring``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pint
from django.db import transaction
from django.utils import timezone

from batchline.audit.services import Actor, audit_together, record_create
from batchline.configuration import selectors as configuration
from batchline.equipment.stations import registered_station_only
from batchline.rules import canonical
from batchline.rules.verdict import Reason, Verdict
from batchline.signatures.models import Meaning
from batchline.signatures.services import VerifiedSigner, signature_apply
from batchline.units import UnknownUnit, convert

from . import monitoring, prompts, raising
from .entries import MAX_NUMBER, implausible, parse_entry, write_value
from .models import Batch, BatchStep, InstrumentReading, StepState, StepValue
from .refusals import ExecutionRefused, person_of, records_refusal, refuse
from .scaling import Ratio
from .snapshots import step_open


@dataclass(frozen=True)
class DeviceValue:
    """The gateway's latest stored observation of a unit's parameter, as the gateway offers it."""

    equipment: str
    parameter: str
    protocol: str
    endpoint: str
    tag: str
    number: float | None  # a Good or Uncertain number; None for Bad, Stale, text or no value
    raw: str  # the value as the device sent it
    unit: str  # the unit of measure it came in (the tag's configured one where none came)
    quality: str  # good, uncertain, bad, stale (gateway.readings.Quality)
    status: str
    source_time: dt.datetime | None
    gateway_time: dt.datetime
    key: str  # the stored reading's key, hex
    alive_at: dt.datetime | None  # when its connection last reported itself connected, if it is


# Set by the gateway app at start (gateway/apps.py): (unit code, parameter) -> the latest reading,
# or None when no tag carries the parameter on that unit. None: no gateway installed.
ReadingSource = Callable[[str, str], DeviceValue | None]
reading_source: ReadingSource | None = None


def device_inputs(step: BatchStep) -> list[Mapping[str, Any]]:
    return [i for i in step.definition().get("inputs", []) if i.get("device")]


def _definition(step: BatchStep, name: str) -> Mapping[str, Any] | None:
    return next((i for i in device_inputs(step) if i["name"] == name), None)


def unit_and_parameter(step: BatchStep, definition: Mapping[str, Any]) -> tuple[str, str]:
    device = definition["device"]
    return monitoring.unit_of(step, device["equipment"]), device.get("parameter") or definition["name"]


def _age(now: dt.datetime, then: dt.datetime) -> str:
    seconds = int((now - then).total_seconds())
    return f"{seconds} s" if seconds < 120 else f"{seconds // 60} min"


def judge_reading(
    definition: Mapping[str, Any], step: BatchStep, now: dt.datetime
) -> tuple[DeviceValue | None, Decimal | None, Reason | None]:
    """The device's current value of the input, converted to the input's unit; or why it cannot be taken."""
    label = definition["label"]
    code, parameter = unit_and_parameter(step, definition)
    if not code:
        return (
            None,
            None,
            Reason("EQUIPMENT_NOT_IDENTIFIED", f"{label}: identify the unit it is read from first."),
        )
    if reading_source is None:
        return None, None, Reason("NO_GATEWAY", f"{label}: no equipment gateway is installed to read {code}.")
    found = reading_source(code, parameter)
    if found is None:
        return None, None, Reason("NO_READING", f"{label}: {code} has no tag for {parameter} configured.")
    where = f"{label} on {code} ({found.tag})"
    if found.quality in ("bad", "stale") or found.number is None:
        why = {"bad": "Bad quality", "stale": "stale: its source is gone"}.get(found.quality, "not a number")
        if not found.key:
            why = "missing: nothing was read from it in the last day"
        return found, None, Reason("READING_NOT_USABLE", f"{where}: the last reading is {why}.")
    max_age = dt.timedelta(seconds=int(definition["device"].get("max_age_seconds", 60)))
    alive = found.alive_at is not None and now - found.alive_at <= max_age
    if now - found.gateway_time > max_age and not alive:
        return (
            found,
            None,
            Reason(
                "READING_NOT_CURRENT",
                f"{where}: the last reading came {_age(now, found.gateway_time)} ago and its connection is "
                f"not reported alive; a reading is taken within {int(max_age.total_seconds())} s.",
            ),
        )
    unit = definition.get("unit", "")
    try:
        value = Decimal(repr(found.number))
        if unit and found.unit and found.unit != unit:
            value = convert(value, found.unit, unit)
    except (UnknownUnit, pint.errors.PintError, ArithmeticError, ValueError) as exc:
        return (
            found,
            None,
            Reason("READING_UNIT", f"{where}: {found.unit or 'no unit'} is not {unit} ({exc})."),
        )
    if not value.is_finite() or abs(value) >= MAX_NUMBER:
        return found, None, Reason("READING_NOT_USABLE", f"{where}: {found.raw} cannot be recorded.")
    # As many decimals as a recorded value holds; a device's binary float is not exact anyway.
    value = value.quantize(Decimal("1e-6")).normalize()
    return found, value, None


def _taken_reason(step: BatchStep, definition: Mapping[str, Any]) -> Reason | None:
    taken = step.values.filter(name=definition["name"]).order_by("id").first()
    if taken is None:
        return None
    return Reason(
        "READING_TAKEN",
        f"{definition['label']} was recorded at {timezone.localtime(taken.entered_at):%H:%M:%S}: another value "
        "is a correction, with a reason, your signature and a second person's.",
    )


def provenance(found: DeviceValue) -> dict[str, Any]:
    """The reading's record fields (InstrumentReading), as stored."""
    return {
        "equipment": found.equipment[:40],
        "parameter": found.parameter[:200],
        "protocol": found.protocol[:20],
        "endpoint": found.endpoint,
        "tag": found.tag,
        "raw": found.raw[:200],
        "raw_unit": found.unit[:30],
        "quality": found.quality,
        "status": found.status,
        "source_time": found.source_time,
        "gateway_time": found.gateway_time,
        "key": found.key[:32],
    }


def record_reading(
    step: BatchStep,
    definition: Mapping[str, Any],
    found: DeviceValue,
    number: Decimal,
    *,
    actor: Actor,
    factor: Ratio,
) -> StepValue:
    """Write the value read from the device, its provenance, and what it raises (caller holds the lock)."""
    value = write_value(
        step,
        actor=actor,
        definition=definition,
        source="device",
        text=format(number, "f"),
        number=number,
        factor=factor,
    )
    record_create(InstrumentReading(value=value, **provenance(found)), actor=actor)
    if found.quality == "uncertain":
        raising.exception_raise(
            step.batch,
            actor=actor,
            code="READING_UNCERTAIN",
            step=step,
            value=value,
            equipment=found.equipment[:40],
            message=f"{definition['label']} {value.text} {value.unit} was read from {found.equipment} "
            f"({found.tag}) with Uncertain quality{f' ({found.status})' if found.status else ''}.",
        )
    return value


@registered_station_only
@records_refusal
def step_take_reading(*, actor: Actor, user: Any, batch: Batch, step_key: str, name: str) -> StepValue:
    """Take an input's reading from its device on a running step (the operator's "take reading")."""
    person_of(actor)
    with transaction.atomic(), audit_together():
        snap, step = step_open(actor, user, batch, step_key)
        definition = _definition(step, name)
        if definition is None:
            raise refuse("NOT_FROM_DEVICE", f"“{step.title}” has no input {name[:60]!r} read from a machine.")
        if step.state != StepState.RUNNING:
            raise refuse("STEP_NOT_RUNNING", f"“{step.title}” is not running: start it first.")
        taken = _taken_reason(step, definition)
        if taken is not None:
            raise ExecutionRefused(Verdict.of(taken))
        now = timezone.now()
        found, number, problem = judge_reading(definition, step, now)
        if problem is None and number is not None:
            problem = implausible(definition, number, snap.batch.ratio, configuration.notation)
        if problem is not None or found is None or number is None:
            raise ExecutionRefused(Verdict.of(problem))
        return record_reading(step, definition, found, number, actor=actor, factor=snap.batch.ratio)


def witness_reasons(witness: VerifiedSigner | None, person: int, reason: str, what: str) -> list[Reason]:
    """A value typed in place of a device's: the reason the device was not used, and a second person."""
    out = []
    if not reason.strip():
        out.append(
            Reason("REASON_REQUIRED", f"{what} typed by hand needs the reason the device was not used.")
        )
    if witness is None or witness.user.pk == person:
        out.append(
            Reason("WITNESS_REQUIRED", f"{what} typed by hand is confirmed by a second person's signature.")
        )
    return out


@registered_station_only
@records_refusal
def step_enter_reading(
    *,
    actor: Actor,
    user: Any,
    batch: Batch,
    step_key: str,
    name: str,
    text: str | Decimal,
    reason: str,
    witness: VerifiedSigner | None,
    confirm_out_of_specification: bool = False,
) -> StepValue:
    """Type an input that is read from a machine by hand: recorded as manual, with the reason and the
    second person's signature, and an exception for review."""
    person = person_of(actor)
    reason = reason.strip()
    with transaction.atomic(), audit_together():
        snap, step = step_open(actor, user, batch, step_key)
        definition = _definition(step, name)
        if definition is None:
            raise refuse("NOT_FROM_DEVICE", f"“{step.title}” has no input {name[:60]!r} read from a machine.")
        reasons: list[Reason] = []
        if step.state != StepState.RUNNING:
            reasons.append(Reason("STEP_NOT_RUNNING", f"“{step.title}” is not running: start it first."))
        if (taken := _taken_reason(step, definition)) is not None:
            reasons.append(taken)
        reasons += witness_reasons(witness, person, reason, definition["label"])
        typed, number, problem = parse_entry(definition, text, configuration.notation)
        if problem is None and number is not None:
            problem = implausible(definition, number, snap.batch.ratio, configuration.notation)
        if problem is not None:
            reasons.append(problem)
        if reasons:
            raise ExecutionRefused(Verdict(tuple(reasons)))
        assert witness is not None
        if not confirm_out_of_specification:
            unconfirmed = prompts.out_of_specification([(definition, typed, number)], snap.batch.ratio)
            if not unconfirmed.allowed:
                raise prompts.ConfirmationRequired(unconfirmed)
        value = write_value(
            step,
            actor=actor,
            definition=definition,
            source="manual",
            text=typed,
            number=number,
            factor=snap.batch.ratio,
            reason=reason,
        )
        witness_sign(value, witness, actor=actor, reason=reason)
        code, _parameter = unit_and_parameter(step, definition)
        raising.exception_raise(
            snap.batch,
            actor=actor,
            code="MANUAL_READING_ENTRY",
            step=step,
            value=value,
            equipment=code[:40],
            message=f"{definition['label']} typed by hand instead of read from {code or 'its unit'}: "
            f"{value.text} {value.unit}. Reason: {reason}",
        )
        return value


def witness_sign(value: StepValue, witness: VerifiedSigner, *, actor: Actor, reason: str) -> None:
    """The second person's signature on a value typed in place of a device's reading."""
    signature_apply(
        signer=witness,
        meaning=Meaning.VERIFIED,
        record=value,
        content={
            "value": value.pk,
            "name": value.name,
            "text": value.text,
            "unit": value.unit,
            "reason": reason,
        },
        actor=actor,
        comment=reason,
    )


def completion(
    step: BatchStep, entries: Mapping[str, Any], now: dt.datetime
) -> tuple[list[Reason], list[tuple[Mapping[str, Any], DeviceValue, Decimal]]]:
    """At completion: why the step cannot complete for its device inputs, and the readings it takes
    itself (``at_completion``). A device input is never typed into the completion's entries."""
    reasons: list[Reason] = []
    to_take: list[tuple[Mapping[str, Any], DeviceValue, Decimal]] = []
    inputs = device_inputs(step)
    if not inputs:
        return reasons, to_take
    recorded = set(step.values.filter(name__in=[i["name"] for i in inputs]).values_list("name", flat=True))
    for definition in inputs:
        typed = entries.get(definition["name"])
        if typed is not None and str(typed).strip():
            reasons.append(
                Reason(
                    "READ_FROM_DEVICE",
                    f"{definition['label']} is read from the machine: take the reading, or type it by hand "
                    "with a reason and a second person.",
                )
            )
            continue
        if definition["name"] in recorded:
            continue
        if definition["device"].get("at_completion"):
            found, number, problem = judge_reading(definition, step, now)
            if problem is None and number is not None:
                problem = implausible(definition, number, step.batch.ratio, configuration.notation)
            if problem is not None:
                reasons.append(problem)
            elif found is not None and number is not None:
                to_take.append((definition, found, number))
        elif definition.get("required", True):
            code, _parameter = unit_and_parameter(step, definition)
            reasons.append(
                Reason(
                    "READING_NOT_TAKEN",
                    f"Take the reading of {definition['label']} from {code or 'its unit'}, or type it by hand "
                    "with a reason and a second person.",
                )
            )
    return reasons, to_take


def reading_rows(value_ids: Iterable[int]) -> dict[int, InstrumentReading]:
    """``{value id: its reading}`` for the values among ``value_ids`` read from a machine, one query."""
    ids = list(value_ids)
    if not ids:
        return {}
    return {r.value_id: r for r in InstrumentReading.objects.filter(value_id__in=ids)}


def provenance_of(r: InstrumentReading) -> dict[str, Any]:
    """Where a value came from, in the canonical shape a step's signature binds (``rules.bindings``)."""
    return {
        "equipment": r.equipment,
        "protocol": r.protocol,
        "endpoint": r.endpoint,
        "tag": r.tag,
        "raw": r.raw,
        "raw_unit": r.raw_unit,
        "quality": r.quality,
        "source_time": str(canonical.normalise(r.source_time)) if r.source_time else None,
        "gateway_time": str(canonical.normalise(r.gateway_time)),
        "key": r.key,
    }


def readings_of(value_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """``{value id: provenance}`` for the values read from a machine, one query."""
    return {pk: provenance_of(r) for pk, r in reading_rows(value_ids).items()}
