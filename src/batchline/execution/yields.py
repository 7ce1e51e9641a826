"""Yields per operation and reconciliation per lot, read from what the batch recorded (YLD-01..03).

An operation's yield (recipes/document.py ``yield``) travels, at batch
creation, with the step that records its actual quantity; when that step
completes (or its value is corrected) the yield is judged and, outside its
limits, raises an exception, which blocks the batch's release until QA
dispositions it. Reconciliation is judged when the batch completes; it is read
again from the ledger as it stands, so a return to stock or a waste recorded
after completion (allowed until the production review) shows in the review and
the record. Both are read in a fixed number of queries.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from django.db.models import Sum

from batchline.audit.services import Actor
from batchline.configuration import selectors as configuration
from batchline.materials.models import Consumption, LedgerEntry, Movement
from batchline.rules import yields as rules
from batchline.units import convert

from .models import Batch, BatchStep, StepValue
from .raising import exception_raise


def _current(batch: Batch, names: set[str]) -> dict[str, StepValue]:
    rows = list(StepValue.objects.filter(step__batch=batch, name__in=names).order_by("entered_at", "id"))
    replaced = {v.corrects_id for v in rows if v.corrects_id}
    return {v.name: v for v in rows if v.pk not in replaced}


def _consumed(batch: Batch) -> dict[str, list[tuple[Decimal, str]]]:
    """What each step charged into the batch, per unit, in one query."""
    found: dict[str, list[tuple[Decimal, str]]] = defaultdict(list)
    for key, unit, total in (
        Consumption.objects.filter(batch_number=batch.number)
        .values_list("step_key", "unit")
        .annotate(total=Sum("quantity"))
        .values_list("step_key", "unit", "total")
    ):
        found[key].append((total, unit))
    return found


def _components(
    spec: dict[str, Any], consumed: dict[str, list[tuple[Decimal, str]]]
) -> list[tuple[Decimal, str]]:
    """The components of the yield's own operation: a later operation's additions do not count."""
    return [c for key in spec.get("steps", []) for c in consumed.get(key, [])]


def _judge(
    batch: Batch, spec: dict[str, Any], value: StepValue | None, components: list[tuple[Decimal, str]]
) -> rules.Yield:
    unit = value.unit if value is not None else spec.get("unit", "")
    actual = value.number if value is not None else None
    if spec.get("theoretical") is not None:
        theoretical = Decimal(spec["theoretical"])
        if spec.get("scales", True):
            planned, nominal = batch.ratio
            theoretical = theoretical * planned / nominal
        theoretical = convert(theoretical, spec["unit"], unit) if unit and spec.get("unit") else theoretical
    else:
        total = Decimal(0)
        for quantity, component_unit in components:
            try:
                total += convert(quantity, component_unit, unit)
            except Exception:  # noqa: S112 (a component counted in pieces does not weigh: left out)
                continue
        theoretical = total or None  # type: ignore[assignment]
    return rules.Yield(
        step=spec.get("step", ""),
        operation=spec["operation"],
        actual=actual,
        theoretical=theoretical,
        unit=unit,
        low=Decimal(spec["low_percent"]),
        high=Decimal(spec["high_percent"]),
    )


def judge_step(step: BatchStep, *, actor: Actor) -> rules.Yield | None:
    """The yield a just-completed (or corrected) step records, judged; an exception when outside its limits."""
    spec = step.spec.get("yield")
    if not spec:
        return None
    value = _current(step.batch, {spec["actual"]}).get(spec["actual"])
    components = _components(spec, _consumed(step.batch)) if spec.get("theoretical") is None else []
    result = _judge(step.batch, {**spec, "step": step.key}, value, components)
    if result.within is False:
        exception_raise(
            step.batch,
            actor=actor,
            code="YIELD_OUT_OF_LIMITS",
            step=step,
            value=value,
            message=f"{result.text()}.",
        )
    return result


def batch_yields(batch: Batch) -> list[rules.Yield]:
    specs = [
        {**spec, "step": key}
        for key, spec in BatchStep.objects.filter(batch=batch, spec__has_key="yield")
        .order_by("seq")
        .values_list("key", "spec__yield")
        if spec
    ]
    if not specs:
        return []
    values = _current(batch, {s["actual"] for s in specs})
    consumed = _consumed(batch) if any(s.get("theoretical") is None for s in specs) else {}
    return [_judge(batch, s, values.get(s["actual"]), _components(s, consumed)) for s in specs]


def batch_reconciliation(batch: Batch) -> list[rules.Reconciliation]:
    """Per lot: issued to the batch (weighed out for it, or charged straight from stock), consumed into
    it, returned to stock and wasted from its dispensed containers; what is left in them is unaccounted.

    Read from the ledger as it stands, so a return or waste after the batch completed shows here
    (and in the review) as it happened; the exception the completion raised stays for QA.
    """
    tolerance = configuration.current().reconciliation_tolerance_percent
    issued: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    consumed: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    returned: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    waste: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    held: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    # Every movement of the batch's dispensed containers, summed by kind in one read: into them
    # (dispense), out of them other than by consumption (return, waste), and so what they hold.
    # The return's entry into the new stock container is not the batch's (not dispensed for it).
    column = {Movement.DISPENSE: issued, Movement.RETURN: returned, Movement.DESTROY: waste}
    for lot, material, unit, kind, total in (
        LedgerEntry.objects.filter(container__dispensed_for=batch.number)
        .values_list("container__lot__number", "container__lot__material__code", "unit", "kind")
        .annotate(total=Sum("quantity"))
        .values_list("container__lot__number", "container__lot__material__code", "unit", "kind", "total")
    ):
        if kind in column:
            column[kind][lot, material, unit] += abs(total)
        held[lot, material, unit] += total
    for lot, material, unit, quantity, dispensed_for in Consumption.objects.filter(
        batch_number=batch.number
    ).values_list("lot__number", "lot__material__code", "unit", "quantity", "container__dispensed_for"):
        consumed[lot, material, unit] += quantity
        if dispensed_for != batch.number:  # charged straight from a stock container: issued as consumed
            issued[lot, material, unit] += quantity
    return [
        rules.Reconciliation(
            lot=lot,
            material=material,
            unit=unit,
            issued=issued[key],
            consumed=consumed[key],
            returned=returned[key],
            waste=waste[key],
            tolerance_percent=tolerance,
            held=max(held[key], Decimal(0)),
        )
        for key in sorted({*issued, *consumed})
        for lot, material, unit in [key]
    ]


def judge_batch(batch: Batch, *, actor: Actor) -> None:
    """At the batch's completion: each lot's reconciliation outside its tolerance raises an exception."""
    for r in batch_reconciliation(batch):
        if not r.within:
            exception_raise(
                batch,
                actor=actor,
                code="RECONCILIATION_OUT_OF_LIMITS",
                material=r.lot[:60],
                message=f"Reconciliation of {r.text()}.",
            )
