"""ERP production orders (ISA-95 OperationsSchedule → OperationsRequest) as batches (S95-01, S95-02).

- ``ProcessOperationsSchedule``: each OperationsRequest becomes a batch of the
  product's effective recipe version, for the quantity asked, *created* and
  waiting for a supervisor's release to the floor; the order's ID stays with it
  (:class:`ErpOrder`) so later messages find it.
- ``ChangeOperationsSchedule``: a new quantity (while the batch is still
  created), new planned dates.
- ``CancelOperationsSchedule``: the batch aborted with the ERP's reason, while
  it has not started.

The whole message is judged before anything is written and applied whole or
not at all. A refusal says which order and why; a message that needs what is
not here yet (a material's master data, a recipe on its way to effective, the
order a change is about) is parked by the runner (``inbound.py``).
The mapping, field by field, is in docs/integration.md.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.utils import timezone

from batchline.audit.services import record_create, record_update
from batchline.execution import planning
from batchline.execution import services as execution
from batchline.execution.models import Batch, BatchState
from batchline.execution.services import BATCH_NUMBER, ExecutionRefused
from batchline.materials.models import Material
from batchline.recipes.models import MasterRecipe, Product, RecipeStatus
from batchline.rules import states
from batchline.units import UnknownUnit, check_unit, convert

from . import b2mml
from .b2mml import Quantity, ValueRefused, children, q, text
from .handling import Context, MessageRefused, Missing, Outcome, applied
from .models import ErpOrder, InboundMessage, MessageState

PRODUCED = "Produced"
CONSUMED = ("Consumed", "Consumable", "")  # a BOM line without MaterialUse is a component
SIX = Decimal("0.000001")
LARGEST = Decimal("1e12")


@dataclass(frozen=True)
class Need:
    code: str
    quantity: Quantity | None
    line: int


@dataclass
class Order:
    id: str
    line: int
    product: str = ""
    quantity: Quantity | None = None
    lot: str = ""
    recipe_code: str = ""
    bom: list[Need] = field(default_factory=list)
    start: dt.datetime | None = None
    end: dt.datetime | None = None


def _order(req: Any) -> Order:
    order = Order(text(req, "ID"), req.sourceline, recipe_code=text(req, "OperationsDefinitionID"))
    where = f"Order {order.id} (line {order.line})"
    try:
        if text(req, "StartTime"):
            order.start = b2mml.moment(text(req, "StartTime"), what=f"{where}: StartTime")
        if text(req, "EndTime"):
            order.end = b2mml.moment(text(req, "EndTime"), what=f"{where}: EndTime")
    except ValueRefused as exc:
        raise MessageRefused("DATE", str(exc)) from None
    produced = []
    for need in req.iter(q("MaterialRequirement")):
        codes = [(c.text or "").strip() for c in children(need, "MaterialDefinitionID")]
        use = text(need, "MaterialUse")
        if len(codes) != 1:
            raise MessageRefused(
                "REQUIREMENT",
                f"{where}: MaterialRequirement {text(need, 'ID')} (line {need.sourceline}) names "
                f"{len(codes)} material definitions; Batchline reads one per requirement (a material class "
                "alone is not checked against a recipe).",
            )
        amounts = b2mml.quantities(need)
        if use == PRODUCED:
            produced.append(need)
            order.product = codes[0]
            order.quantity = amounts[0] if amounts else None
            order.lot = text(need, "MaterialLotID")
        elif use in CONSUMED:
            order.bom.append(Need(codes[0], amounts[0] if amounts else None, need.sourceline))
    if len(produced) > 1:
        raise MessageRefused(
            "PRODUCT", f"{where} names {len(produced)} produced materials: a batch makes one product."
        )
    return order


def read_orders(doc: Any) -> list[Order]:
    orders = [_order(req) for req in doc.iter(q("OperationsRequest"))]
    seen: set[str] = set()
    for order in orders:
        if order.id in seen:
            raise MessageRefused("ORDER_TWICE", f"Order {order.id} is in the message twice.")
        seen.add(order.id)
    return orders


def _amount(quantity: Quantity, target: str, *, what: str) -> Decimal:
    """``quantity`` in ``target`` units, to six decimals; refused in words."""
    try:
        value = b2mml.decimal(quantity.value, what=what)
    except ValueRefused as exc:
        raise MessageRefused("QUANTITY", str(exc)) from None
    if value <= 0:
        raise MessageRefused("QUANTITY", f"{what} {quantity.value} is not a quantity more than zero.")
    if value >= LARGEST:
        raise MessageRefused(
            "QUANTITY", f"{what} {quantity.value} is more than Batchline counts (below 10¹²)."
        )
    if not quantity.unit:
        raise MessageRefused("QUANTITY", f"{what} {quantity.value} has no UnitOfMeasure.")
    unit = b2mml.unit_of(quantity.unit)
    if unit == target:
        return value  # more than six decimals is refused in words where it is used (batch_create)
    try:
        converted = _convert(value, check_unit(unit), target)
    except UnknownUnit:
        raise MessageRefused("UNIT", f"{what}: {quantity.unit!r} is not a unit Batchline knows.") from None
    except Exception:  # pint: the dimensions differ
        raise MessageRefused(
            "UNIT", f"{what} is {quantity.value} {quantity.unit}, which cannot be counted in {target}."
        ) from None
    if converted >= LARGEST:
        raise MessageRefused("QUANTITY", f"{what} {quantity.value} {unit} is more than Batchline counts.")
    return converted.quantize(SIX)


# --- the recipe's materials, for the bill of materials ---------------------------------------


@dataclass(frozen=True)
class Charge:
    quantity: Decimal
    unit: str
    scales: bool
    tolerance_percent: Decimal | None
    tolerance_absolute: Decimal | None
    potency_adjust: bool


def recipe_charges(document: dict[str, Any]) -> dict[str, list[Charge]]:
    """What each material step of a recipe document takes, by material; a charge of what a weighing
    step dispensed counts once, at the weighing."""
    out: dict[str, list[Charge]] = defaultdict(list)
    for op in document.get("operations", []):
        for step in op.get("steps", []):
            m = step.get("material")
            if not m or step.get("kind") not in ("weigh_dispense", "material_charge"):
                continue
            out.setdefault(m["code"], [])
            if m.get("dispensed"):
                continue
            out[m["code"]].append(
                Charge(
                    quantity=Decimal(str(m["quantity"])),
                    unit=m["unit"],
                    scales=m.get("scales", True),
                    tolerance_percent=None
                    if m.get("tolerance_percent") is None
                    else Decimal(str(m["tolerance_percent"])),
                    tolerance_absolute=None
                    if m.get("tolerance_absolute") is None
                    else Decimal(str(m["tolerance_absolute"])),
                    potency_adjust=bool(m.get("potency_adjust")),
                )
            )
    return dict(out)


def bom_check(
    order: Order, recipe: MasterRecipe, charges: dict[str, list[Charge]], planned: Decimal
) -> list[str]:
    """Refuse an order whose bill of materials does not match the recipe's ``charges``; the notes of
    what was not compared."""
    label = f"{recipe.code} v{recipe.version}"
    if not order.bom:
        return [f"Order {order.id} sends no bill of materials: nothing to compare with {label}."]
    given: dict[str, list[Need]] = defaultdict(list)
    for need in order.bom:
        given[need.code].append(need)
    problems = []
    absent = sorted(set(charges) - set(given))
    extra = sorted(set(given) - set(charges))
    if absent:
        problems.append(
            f"recipe {label} charges {', '.join(absent)}, which the order's bill of materials lacks"
        )
    if extra:
        problems.append(
            f"the order's bill of materials names {', '.join(extra)}, which recipe {label} does not charge"
        )
    notes = []
    ratio = planned / recipe.nominal_quantity
    for code, needs in sorted(given.items()):
        steps = charges.get(code)
        if not steps or any(n.quantity is None for n in needs):
            continue
        if any(c.potency_adjust for c in steps):
            notes.append(f"{code}: weighed to each lot's assay, so its quantity is not compared.")
            continue
        unit = steps[0].unit
        asked = sum(
            (
                _amount(n.quantity, unit, what=f"Order {order.id}: {code} (line {n.line})")
                for n in needs
                if n.quantity
            ),
            Decimal(0),
        )
        try:
            expected, tolerance = _expected(steps, unit, ratio)
        except Exception:  # the recipe weighs it in units that do not convert into each other
            notes.append(f"{code}: the recipe's steps count it in different kinds of unit; not compared.")
            continue
        if abs(asked - expected) > tolerance + SIX:
            problems.append(
                f"the bill of materials asks {_shown(asked)} {unit} of {code}; recipe {label} charges "
                f"{_shown(expected)} {unit} for {_shown(planned)} {recipe.nominal_unit} (± {_shown(tolerance)} {unit})"
            )
    if problems:
        raise MessageRefused("BOM_MISMATCH", f"Order {order.id}: " + "; ".join(problems) + ".")
    return notes


def _convert(value: Decimal, source: str, target: str) -> Decimal:
    return value if source == target else convert(value, source, target)


def _expected(steps: list[Charge], unit: str, ratio: Decimal) -> tuple[Decimal, Decimal]:
    """What the recipe's steps take of one material at this batch size, and how far that may stray."""
    expected = tolerance = Decimal(0)
    for c in steps:
        amount = _convert(c.quantity, c.unit, unit) * (ratio if c.scales else 1)
        expected += amount
        if c.tolerance_percent is not None:
            tolerance += amount * c.tolerance_percent / 100
        elif c.tolerance_absolute is not None:
            tolerance += _convert(c.tolerance_absolute, c.unit, unit)
    return expected, tolerance


def _shown(value: Decimal) -> str:
    return format(value.quantize(SIX).normalize(), "f")


# --- ProcessOperationsSchedule ----------------------------------------------------------------


@dataclass
class Plan:
    order: Order
    recipe: MasterRecipe
    planned: Decimal
    number: str
    notes: list[str]


def _recipe(order: Order, product: Product, missing: Missing) -> MasterRecipe | None:
    found = MasterRecipe.objects.filter(product=product).select_related("product")
    if order.recipe_code:
        found = found.filter(code=order.recipe_code)
    effective = list(found.filter(status=RecipeStatus.EFFECTIVE))
    named = f" {order.recipe_code}" if order.recipe_code else ""
    if len(effective) > 1:
        raise MessageRefused(
            "RECIPE_AMBIGUOUS",
            f"Order {order.id}: product {product.code} has {len(effective)} effective recipes "
            f"({', '.join(r.code for r in effective)}): name one in OperationsDefinitionID.",
        )
    if effective:
        return effective[0]
    coming = list(found.filter(status__in=[RecipeStatus.IN_REVIEW, RecipeStatus.APPROVED]))
    if coming:
        versions = ", ".join(f"{r.code} v{r.version} ({r.get_status_display().lower()})" for r in coming)
        missing.add(
            f"recipe:{product.code}",
            f"Order {order.id}: product {product.code} has no effective recipe{named} yet; {versions} is on its way.",
        )
        return None
    raise MessageRefused(
        "NO_EFFECTIVE_RECIPE",
        f"Order {order.id}: there is no effective recipe{named} for product {product.code}: a batch is made "
        "only from an effective master recipe.",
    )


def _materials(order: Order, codes: set[str], missing: Missing) -> None:
    known = {m.code: m for m in Material.objects.filter(code__in=codes)}
    for code in sorted(codes):
        material = known.get(code)
        if material is None:
            missing.add(
                f"material:{code}",
                f"Order {order.id}: material {code} is not in Batchline's master data yet.",
            )
        elif material.retired_at is not None:
            raise MessageRefused(
                "MATERIAL_RETIRED", f"Order {order.id}: material {code} is retired in the master data."
            )


def _plan(order: Order, missing: Missing) -> Plan | None:
    if ErpOrder.objects.filter(order_id=order.id).exists():
        raise MessageRefused(
            "ORDER_EXISTS",
            f"Order {order.id} exists already: a change of it is a ChangeOperationsSchedule.",
        )
    if not order.product:
        raise MessageRefused(
            "PRODUCT",
            f"Order {order.id} names no product: a MaterialRequirement with MaterialUse Produced and the "
            "product's MaterialDefinitionID.",
        )
    product = Product.objects.filter(code=order.product).first()
    if product is None:
        raise MessageRefused(
            "UNKNOWN_PRODUCT",
            f"Order {order.id}: Batchline has no product {order.product} (a product is what a master recipe makes).",
        )
    recipe = _recipe(order, product, missing)
    if recipe is None:
        return None
    if order.quantity is None:
        raise MessageRefused("QUANTITY", f"Order {order.id} gives no quantity of {product.code} to make.")
    planned = _amount(order.quantity, recipe.nominal_unit, what=f"Order {order.id}: the quantity")
    charges = recipe_charges(recipe.document)
    notes = bom_check(order, recipe, charges, planned)
    _materials(order, set(charges) | {n.code for n in order.bom}, missing)
    number = order.lot or order.id
    if not BATCH_NUMBER.fullmatch(number):
        raise MessageRefused(
            "BATCH_NUMBER",
            f"Order {order.id}: {number!r} cannot be a batch number (letters, digits, '.', '_' and '-', up to 40).",
        )
    return Plan(order, recipe, planned, number, notes)


def process(ctx: Context) -> Outcome:
    orders = read_orders(ctx.env.doc)
    missing = Missing()
    plans = [plan for plan in (_plan(order, missing) for order in orders) if plan is not None]
    if missing:
        return missing.outcome()
    lines, now = [], timezone.now()
    for plan in plans:
        o = plan.order
        try:
            batch = execution.batch_create(
                actor=ctx.actor, recipe=plan.recipe, number=plan.number, planned_quantity=plan.planned
            )
        except ExecutionRefused as exc:
            raise MessageRefused(exc.verdict.reasons[0].code, f"Order {o.id}: {exc}") from None
        record_create(
            ErpOrder(
                order_id=o.id,
                batch=batch,
                message=ctx.message,
                product=o.product,
                planned_start=o.start,
                planned_end=o.end,
                created_at=now,
            ),
            actor=ctx.actor,
            reason=f"order {o.id} from message {ctx.env.bodid}",
        )
        lines.append(
            f"Order {o.id}: batch {batch.number} created, {_shown(plan.planned)} {plan.recipe.nominal_unit} of "
            f"{o.product} by recipe {plan.recipe.code} v{plan.recipe.version}; it waits for a supervisor's "
            "release to the floor."
        )
        lines += [f"Order {o.id}: {note}" for note in plan.notes]
    return applied("APPLIED", lines, announce=[f"order:{p.order.id}" for p in plans])


# --- ChangeOperationsSchedule and CancelOperationsSchedule -----------------------------------


def _known(order_id: str, missing: Missing) -> ErpOrder | None:
    found = ErpOrder.objects.select_related("batch", "batch__recipe").filter(order_id=order_id).first()
    if found is None:
        waiting = _parked_with(order_id)
        missing.add(
            f"order:{order_id}",
            f"Order {order_id} is not known yet"
            + (f" (message {waiting} holding it is parked itself)." if waiting else "."),
        )
    return found


def _parked_with(order_id: str) -> str:
    for m in InboundMessage.objects.filter(state=MessageState.PARKED, verb="Process"):
        if order_id in {o.id for o in read_orders(b2mml.read(bytes(m.body), max_bytes=len(m.body)).doc)}:
            return m.bodid
    return ""


def change(ctx: Context) -> Outcome:
    missing, todo, lines = Missing(), [], []
    for order in read_orders(ctx.env.doc):
        erp = _known(order.id, missing)
        if erp is None:
            continue
        batch: Batch = erp.batch
        if order.product and order.product != erp.product:
            raise MessageRefused(
                "PRODUCT_CHANGE",
                f"Order {order.id} makes {erp.product}: an order's product does not change (cancel it and send a new one).",
            )
        if order.lot and order.lot != batch.number:
            raise MessageRefused(
                "BATCH_NUMBER_CHANGE",
                f"Order {order.id} is batch {batch.number}: its batch number does not change.",
            )
        planned = batch.planned_quantity
        if order.quantity is not None:
            planned = _amount(order.quantity, batch.unit, what=f"Order {order.id}: the quantity")
        notes = bom_check(order, batch.recipe, recipe_charges(batch.control_recipe), planned)
        dates = {
            k: v
            for k, v in (("planned_start", order.start), ("planned_end", order.end))
            if v is not None and v != getattr(erp, k)
        }
        if planned != batch.planned_quantity and batch.state != BatchState.CREATED:
            raise MessageRefused(
                "BATCH_NOT_CREATED",
                f"Order {order.id}: batch {batch.number} is {states.LABELS[batch.state]}: its quantity changes only "
                "before the supervisor releases it to the floor.",
            )
        todo.append((order, erp, planned, dates))
        lines += [f"Order {order.id}: {n}" for n in notes]
    if missing:
        return missing.outcome()
    changed = 0
    for order, erp, planned, dates in todo:
        batch = erp.batch
        reason = f"ERP order {order.id} changed (message {ctx.env.bodid})"
        if planned != batch.planned_quantity:
            before = batch.planned_quantity
            planning.batch_replan(actor=ctx.actor, batch=batch, planned_quantity=planned, reason=reason)
            lines.insert(
                0,
                f"Order {order.id}: batch {batch.number}'s planned quantity {_shown(before)} → {_shown(planned)} {batch.unit}.",
            )
            changed += 1
        if dates:
            record_update(erp, actor=ctx.actor, values=dates, reason=reason)
            lines.insert(0, f"Order {order.id}: planned dates now {_dates(erp)}.")
            changed += 1
    if not changed:
        return applied("UNCHANGED", ["The orders hold these values already: nothing changed.", *lines])
    return applied("APPLIED", lines)


def _dates(erp: ErpOrder) -> str:
    def shown(value: dt.datetime | None) -> str:
        return value.isoformat(timespec="minutes") if value else "—"

    return f"{shown(erp.planned_start)} to {shown(erp.planned_end)}"


def _cancel_reason(doc: Any) -> str:
    status = doc.find(f"{q('DataArea')}/{q('Cancel')}/{q('ActionCriteria')}/{q('ChangeStatus')}")
    if status is None:
        return ""
    words = [text(status, "Reason"), text(status, "Description"), text(status, "ReasonCode")]
    return next((w for w in words if w), "")


def cancel(ctx: Context) -> Outcome:
    said = _cancel_reason(ctx.env.doc)
    missing, todo, lines = Missing(), [], []
    for order in read_orders(ctx.env.doc):
        erp = _known(order.id, missing)
        if erp is None:
            continue
        batch = erp.batch
        if batch.state == BatchState.ABORTED:
            lines.append(f"Order {order.id}: batch {batch.number} is aborted already: nothing to do.")
        elif batch.state in planning.NOT_STARTED:
            todo.append((order, batch))
        else:
            raise MessageRefused(
                "BATCH_STARTED",
                f"Order {order.id}: batch {batch.number} is {states.LABELS[batch.state]}: a batch the floor has "
                "begun is not cancelled by the ERP; a supervisor holds or aborts it, with a signature.",
            )
    if missing:
        return missing.outcome()
    for order, batch in todo:
        reason = f"ERP cancelled order {order.id} (message {ctx.env.bodid})" + (f": {said}" if said else "")
        try:
            planning.batch_cancel(actor=ctx.actor, batch=batch, reason=reason)
        except ExecutionRefused as exc:
            raise MessageRefused(exc.verdict.reasons[0].code, f"Order {order.id}: {exc}") from None
        lines.insert(0, f"Order {order.id}: batch {batch.number} aborted before it started ({reason}).")
    return applied("APPLIED" if todo else "UNCHANGED", lines)
