"""Values recorded on a step: entries read in the site's notation and judged against their limits,
calculations, what the system measured, and recalculation after a correction."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils import timezone

from batchline.audit.services import (
    Actor,
    record_create,
)
from batchline.configuration import selectors as configuration
from batchline.rules import graph, numbers
from batchline.rules.formula import FormulaError
from batchline.rules.formula import parse as parse_formula
from batchline.rules.limits import judge
from batchline.rules.numbers import NotANumber, Notation
from batchline.rules.verdict import Reason
from batchline.units import convert

from . import (
    producing,
    raising,
)
from .models import Batch, BatchStep, Severity, StepState, StepValue
from .refusals import person_of, refuse
from .scaling import Ratio, number_limits, plain
from .snapshots import Snapshot

# StepValue.number is numeric(28, 9): at most 19 digits before the point and 9 after.
MAX_NUMBER = Decimal("1e19")


def parse_entry(
    definition: Mapping[str, Any], raw: str | Decimal | int, notation: Callable[[], Notation]
) -> tuple[str, Decimal | None, Reason | None]:
    """The entry as text and, for numbers, as a Decimal read in the site's notation; or why it cannot be taken.

    A typed entry is read by ``rules.numbers`` (the notation is read only for a typed
    number); a machine's number (an API client's JSON number) is exact already, and its
    text is the number as the site writes it.
    """
    label, kind = definition["label"], definition.get("type", "number")
    if isinstance(raw, Decimal | int) and not isinstance(raw, bool):
        number = Decimal(raw)
        if not number.is_finite():
            return "", None, Reason("NOT_A_NUMBER", f"{label}: {number} is not a number.")
        text = numbers.written(number, notation()) if abs(number) < MAX_NUMBER else f"{number:.3e}"
    else:
        text = str(raw).strip()
        number = None
    if len(text) > 2000:
        return text[:50], None, Reason("TOO_LONG", f"{label}: at most 2000 characters, not {len(text)}.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "", None, Reason("NOT_TEXT", f"{label}: the entry contains characters that are not text.")
    if kind == "number":
        if number is None:
            try:
                # Whole digits read alike in every notation: the configuration is not asked for them.
                number = numbers.read(text, notation() if numbers.needs_notation(text) else numbers.POINT)
            except NotANumber as exc:
                return text[:50], None, Reason("NOT_A_NUMBER", numbers.sentence(label, exc))
        if abs(number) >= MAX_NUMBER or number.as_tuple().exponent < -9:  # type: ignore[operator]
            return (
                text[:50],
                None,
                Reason(
                    "NOT_A_NUMBER",
                    f"{label}: {text[:50]} has more digits than a recorded value can hold "
                    "(19 before the decimal mark, 9 after).",
                ),
            )
        return text, number, None
    if kind == "choice" and text not in definition.get("choices", []):
        return (
            text,
            None,
            Reason("NOT_A_CHOICE", f"{label}: choose one of {', '.join(definition['choices'])}."),
        )
    if kind == "yes_no" and text.lower() not in ("yes", "no"):
        return text, None, Reason("NOT_YES_NO", f"{label}: answer yes or no.")
    return (text.lower() if kind == "yes_no" else text), None, None


def implausible(
    definition: Mapping[str, Any], number: Decimal, ratio: Ratio, notation: Callable[[], Notation]
) -> Reason | None:
    """Why a number cannot be right (outside its plausibility limits), in the site's notation; or None."""
    limits, unit, label = number_limits(definition, ratio), definition.get("unit", ""), definition["label"]
    if judge(number, limits, unit=unit, label=label).verdict.allowed:
        return None  # the notation is read only to say why not
    return judge(number, limits, unit=unit, label=label, notation=notation()).verdict.reasons[0]


def said(text: str, number: Decimal | None) -> str:
    """A value in a message: a number as the site writes it (read now, only for the message)."""
    return text if number is None else numbers.recorded(number, text, configuration.notation())[0]


def current_values(batch: Batch) -> dict[str, StepValue]:
    """The latest value of every name in the batch (a correction replaces its original here, not in the table)."""
    values: dict[str, StepValue] = {}
    corrected = set(
        StepValue.objects.filter(step__batch=batch, corrects__isnull=False).values_list(
            "corrects_id", flat=True
        )
    )
    for v in StepValue.objects.filter(step__batch=batch).order_by("entered_at", "id"):
        if v.pk not in corrected:
            values[v.name] = v
    return values


def write_value(
    step: BatchStep,
    *,
    actor: Actor,
    definition: Mapping[str, Any],
    source: str,
    text: str,
    number: Decimal | None,
    factor: Ratio,
    corrects: StepValue | None = None,
    reason: str = "",
) -> StepValue:
    in_spec = within_action = None
    if number is not None:
        judged = judge(
            number,
            number_limits(definition, factor),
            unit=definition.get("unit", ""),
            label=definition["label"],
        )
        in_spec, within_action = judged.in_specification, judged.within_action
    value = record_create(
        StepValue(
            step=step,
            name=definition["name"],
            label=definition["label"],
            source=source,
            text=text,
            number=number,
            unit=definition.get("unit", ""),
            in_specification=in_spec,
            within_action=within_action,
            critical=bool(definition.get("critical")),
            entered_by_id=person_of(actor),
            entered_at=timezone.now(),
            station=actor.station,
            corrects=corrects,
            reason=reason,
        ),
        actor=actor,
        reason=reason,
        action="correct" if corrects else "record",
    )
    if in_spec is False:
        spec = number_limits(definition, factor).specification.text(
            definition.get("unit", ""), configuration.notation()
        )
        raising.exception_raise(
            step.batch,
            actor=actor,
            # A critical process parameter or quality attribute stops the batch (rules/exceptions.py).
            code="CRITICAL_OUT_OF_SPECIFICATION" if definition.get("critical") else "OUT_OF_SPECIFICATION",
            message=f"{definition['label']} {said(text, number)} {definition.get('unit', '')} is outside its "
            f"specification {spec}.",
            step=step,
            value=value,
        )
    elif within_action is False and (definition.get("action") or {}):
        raising.exception_raise(
            step.batch,
            actor=actor,
            code="ACTION_LIMIT",
            severity=Severity.LOW,
            message=f"{definition['label']} {said(text, number)} {definition.get('unit', '')} is outside its "
            "action limits.",
            step=step,
            value=value,
        )
    return value


def calculate(
    batch: Batch,
    step: BatchStep,
    definition: Mapping[str, Any],
    *,
    actor: Actor,
    values: dict[str, StepValue],
    reason: str = "",
) -> StepValue:
    numbers = {name: v.number for name, v in values.items() if v.number is not None}
    try:
        result = parse_formula(definition["formula"]).evaluate(numbers)
        result = result.quantize(Decimal(1).scaleb(-int(definition.get("decimals", 2))))
        if not result.is_finite() or abs(result) >= MAX_NUMBER:
            raise FormulaError("the result is too large to record")
    except (FormulaError, InvalidOperation, ArithmeticError) as exc:
        raise refuse("CALCULATION_FAILED", f"{definition['label']} cannot be calculated: {exc}.") from exc
    return write_value(
        step,
        actor=actor,
        definition=definition,
        source="calculated",
        text=str(result),
        number=result,
        factor=batch.ratio,
        corrects=values.get(definition["name"]),
        reason=reason,
    )


def write_measured(
    step: BatchStep, definition: Mapping[str, Any], *, actor: Actor, factor: Ratio, now: Any
) -> StepValue | None:
    """What the system measured on completion: a timer's duration by the server's clock (start to
    now), a produce step's total from its containers; recorded as named values, judged like any."""
    record = (definition.get("timer") or {}).get("record")
    if record and step.started_at is not None:
        minutes = Decimal((now - step.started_at).total_seconds()) / 60
        duration = convert(minutes, "min", record.get("unit", "min"))
        duration = duration.quantize(Decimal(1).scaleb(-int(record.get("decimals", 1))))
        return write_value(
            step,
            actor=actor,
            definition=record,
            source="measured",
            text=str(duration),
            number=duration,
            factor=factor,
        )
    produce = definition.get("produce")
    if produce:
        made = producing.total(step)
        return write_value(
            step,
            actor=actor,
            definition=produce,
            source="calculated",
            text=plain(made),
            number=made,
            factor=factor,
        )
    return None


def steps_using(snap: Snapshot, name: str) -> set[str]:
    """Steps whose calculations use ``name``, directly or through another calculation."""
    used, changed = set(), {name}
    for key in graph.topological_order(snap.preds):
        for calc in snap.steps[key].definition().get("calculations", []):
            if parse_formula(calc["formula"]).names & changed:
                used.add(key)
                changed.add(calc["name"])
    return used


def recalculate(
    snap: Snapshot, values: dict[str, StepValue], *, actor: Actor, changed: str, reason: str
) -> None:
    changed_names = {changed}
    order = graph.topological_order(snap.preds)
    for key in order:
        step = snap.steps[key]
        if step.state == StepState.PENDING:
            continue
        for calc in step.definition().get("calculations", []):
            uses = parse_formula(calc["formula"]).names
            if uses & changed_names and calc["name"] in values:
                values[calc["name"]] = calculate(
                    snap.batch, step, calc, actor=actor, values=values, reason=reason
                )
                changed_names.add(calc["name"])
