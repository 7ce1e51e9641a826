"""Backward and forward traces and recall queries, in a fixed number of queries at any depth.

The graph has two kinds of edge: a consumption (lot → batch, ``Consumption``)
and a production (batch → lot, ``Lot.produced_by_batch``). The lots reached
are found by one recursive query (SQLite and PostgreSQL alike), walking both
edges a level per iteration; everything else (the lots' rows, the edges with
their quantities, containers, batches, equipment uses and people) is then read
set-wise, one query each, never a query per row. Splits (one lot into many
batches) and merges (many lots into one batch) are just several edges.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection
from django.db.models import Max, Min, Q, Sum

from batchline.accounts.models import User
from batchline.equipment.models import Equipment, LogbookEntry, LogbookKind
from batchline.execution.models import Batch, BatchStep
from batchline.materials.models import Consumption, LedgerEntry, Lot, Movement

# Lot levels followed at most: a guard against a cycle (a lot reworked into the batch that
# made it), far past any real chain of intermediates.
MAX_DEPTH = 50

BACKWARD, FORWARD = "backward", "forward"


@dataclass(frozen=True)
class LotNode:
    id: int
    number: str
    material_code: str
    material_name: str
    status: str
    supplier: str
    supplier_lot: str
    produced_by_batch: str
    depth: int  # lot levels from the trace's start (0: a lot the trace started from)


@dataclass(frozen=True)
class BatchNode:
    number: str
    product_code: str
    product_name: str
    state: str
    created_at: dt.datetime | None
    depth: int  # the level of the lots it made (backward) or consumed (forward)


@dataclass(frozen=True)
class Flow:
    """An edge: ``consumed`` lot → batch, or ``produced`` batch → lot, with the quantity moved."""

    kind: str
    lot_id: int
    batch_number: str
    quantity: Decimal
    unit: str


@dataclass(frozen=True)
class ContainerUse:
    code: str
    lot_id: int
    batch_number: str
    # consumed from, produced into, or, for what was left of a container dispensed for the batch,
    # returned (to stock, into the container ``into``) or wasted: never shown as consumption
    kind: str
    quantity: Decimal
    unit: str
    into: str = ""


@dataclass(frozen=True)
class EquipmentUse:
    code: str
    name: str
    batch_number: str
    started_at: dt.datetime | None
    ended_at: dt.datetime | None


@dataclass(frozen=True)
class PersonPart:
    username: str
    printed_name: str
    batch_number: str
    parts: tuple[str, ...]  # performed, verified, moved material


@dataclass
class Trace:
    direction: str
    roots: list[int]
    lots: list[LotNode] = field(default_factory=list)
    batches: list[BatchNode] = field(default_factory=list)
    flows: list[Flow] = field(default_factory=list)
    containers: list[ContainerUse] = field(default_factory=list)
    equipment: list[EquipmentUse] = field(default_factory=list)
    people: list[PersonPart] = field(default_factory=list)


def _levels(direction: str, roots: Sequence[int]) -> dict[int, int]:
    """Every lot reached from ``roots``, with its level (the shortest number of lot steps)."""
    if not roots:
        return {}
    seed = ", ".join(["%s"] * len(roots))
    if direction == BACKWARD:
        # A lot → the batch that made it → every lot that batch consumed.
        step = """
            SELECT c.lot_id, t.depth + 1
            FROM trace t
            JOIN materials_lot l ON l.id = t.lot_id
            JOIN materials_consumption c ON c.batch_number = l.produced_by_batch
            WHERE l.produced_by_batch <> '' AND t.depth < %s
        """
    else:
        # A lot → every batch that consumed it → the lot each of those batches made.
        step = """
            SELECT o.id, t.depth + 1
            FROM trace t
            JOIN materials_consumption c ON c.lot_id = t.lot_id
            JOIN materials_lot o ON o.produced_by_batch = c.batch_number
            WHERE t.depth < %s
        """
    # UNION (not UNION ALL) drops a lot met again at the same level, so merges and
    # splits do not multiply rows.
    sql = f"""
        WITH RECURSIVE trace(lot_id, depth) AS (
            SELECT id, 0 FROM materials_lot WHERE id IN ({seed})
            UNION
            {step}
        )
        SELECT lot_id, MIN(depth) FROM trace GROUP BY lot_id
    """  # noqa: S608 (placeholders and constant text only)
    with connection.cursor() as cursor:
        cursor.execute(sql, [*roots, MAX_DEPTH])
        return {int(lot_id): int(depth) for lot_id, depth in cursor.fetchall()}


def backward(lot_id: int) -> Trace:
    """A lot → every lot, container, batch, equipment unit and person it came from, through every level."""
    return _trace(BACKWARD, [lot_id])


def forward(lot_ids: int | Sequence[int]) -> Trace:
    """Lots → every batch and lot they went into, through every level (a recall's reach)."""
    return _trace(FORWARD, [lot_ids] if isinstance(lot_ids, int) else list(lot_ids))


def _trace(direction: str, roots: list[int]) -> Trace:
    levels = _levels(direction, roots)
    trace = Trace(direction=direction, roots=[r for r in roots if r in levels])
    if not levels:
        return trace
    lots = list(
        Lot.objects.filter(id__in=levels)
        .values_list(
            "id",
            "number",
            "material__code",
            "material__name",
            "status",
            "supplier",
            "supplier_lot",
            "produced_by_batch",
        )
        .order_by("id")
    )
    trace.lots = [LotNode(*row, depth=levels[row[0]]) for row in lots]  # type: ignore[misc]
    # The edges alone, then their ledger entries by primary key: joined in one statement,
    # PostgreSQL misjudged the edges' number and scanned every container (docs/performance.md).
    consumed = Consumption.objects.values_list("lot_id", "batch_number", "ledger_id", "quantity", "unit")
    batch_depth: dict[str, int] = {}
    if direction == BACKWARD:
        # The batches are those that made the lots; each consumed lots one level further back.
        for lot in trace.lots:
            if lot.produced_by_batch:
                batch_depth[lot.produced_by_batch] = min(
                    lot.depth, batch_depth.get(lot.produced_by_batch, MAX_DEPTH)
                )
        consumed = consumed.filter(batch_number__in=list(batch_depth))
    else:
        consumed = consumed.filter(lot_id__in=list(levels))
    edges = [row for row in consumed.order_by() if row[0] in levels]  # a lot past MAX_DEPTH is left out
    moved = {
        entry: (user_id, code)
        for entry, user_id, code in LedgerEntry.objects.filter(id__in=[e[2] for e in edges]).values_list(
            "id", "user_id", "container__code"
        )
    }
    flows: dict[tuple[str, int, str, str], Decimal] = defaultdict(Decimal)
    users: dict[tuple[int, str], set[str]] = defaultdict(set)
    taken: dict[tuple[str, int, str, str], Decimal] = defaultdict(Decimal)
    for lot_id, number, entry, quantity, unit in edges:
        if direction == FORWARD:
            batch_depth[number] = min(levels[lot_id], batch_depth.get(number, MAX_DEPTH))
        flows[("consumed", lot_id, number, unit)] += quantity
        user_id, code = moved[entry]
        taken[(code, lot_id, number, unit)] += quantity
        users[(user_id, number)].add("moved material")
    trace.containers = [
        ContainerUse(code, lot_id, number, "consumed", quantity, unit)
        for (code, lot_id, number, unit), quantity in taken.items()
    ]
    # Production: what each batch in the trace put into its output lot, when that lot is in it; and,
    # in the same query, what was left of the batches' dispensed containers of the trace's lots and
    # returned to stock or wasted (not a flow into the batch: it did not go into the product).
    made = {lot.id: lot.produced_by_batch for lot in trace.lots if lot.produced_by_batch in batch_depth}
    left = Q(
        kind__in=[Movement.RETURN, Movement.DESTROY],
        quantity__lt=0,
        container__dispensed_for__in=list(batch_depth),
        container__lot_id__in=list(levels),
    )
    moved_out = (
        LedgerEntry.objects.filter(Q(container__lot_id__in=list(made), kind=Movement.PRODUCE) | left)
        .values(
            "container__lot_id",
            "container__code",
            "unit",
            "user_id",
            "kind",
            "batch_number",
            "counterpart__code",
        )
        .annotate(quantity=Sum("quantity"))
        .order_by()
    )
    for lot_id in made:
        flows[("produced", lot_id, made[lot_id], "")] += 0  # an output lot with nothing produced yet
    for row in moved_out:
        lot_id, code, unit = row["container__lot_id"], row["container__code"], row["unit"]
        if row["kind"] != Movement.PRODUCE:
            kind = "returned" if row["kind"] == Movement.RETURN else "wasted"
            number = row["batch_number"]
            trace.containers.append(
                ContainerUse(
                    code, lot_id, number, kind, -row["quantity"], unit, row["counterpart__code"] or ""
                )
            )
            users[(row["user_id"], number)].add("moved material")
            continue
        flows.pop(("produced", lot_id, made[lot_id], ""), None)
        flows[("produced", lot_id, made[lot_id], unit)] += row["quantity"]
        trace.containers.append(ContainerUse(code, lot_id, made[lot_id], "produced", row["quantity"], unit))
        users[(row["user_id"], made[lot_id])].add("moved material")
    trace.flows = [
        Flow(kind, lot_id, number, quantity, unit)
        for (kind, lot_id, number, unit), quantity in sorted(flows.items(), key=lambda f: f[0])
    ]
    trace.containers.sort(key=lambda c: (c.code, c.batch_number))
    numbers = list(batch_depth)
    trace.batches = [
        BatchNode(number, code or "", name or "", state, created, batch_depth[number])
        for number, code, name, state, created in Batch.objects.filter(number__in=numbers)
        .values_list("number", "recipe__product__code", "recipe__product__name", "state", "created_at")
        .order_by("number")
    ]
    known = {b.number for b in trace.batches}
    # A consumption names a batch by number; one unknown here (an external order) still counts.
    trace.batches += [BatchNode(n, "", "", "", None, batch_depth[n]) for n in sorted(set(numbers) - known)]
    trace.equipment = equipment_uses(numbers)
    trace.people = _people(numbers, users)
    return trace


def equipment_uses(batch_numbers: Iterable[str]) -> list[EquipmentUse]:
    """Which units each batch used, from when to when (the equipment logbook's use lines)."""
    rows = (
        LogbookEntry.objects.filter(
            batch_number__in=list(batch_numbers), kind__in=[LogbookKind.USE_START, LogbookKind.USE_END]
        )
        .values("equipment__code", "equipment__name", "batch_number", "kind")
        .annotate(first=Min("at"), last=Max("at"))
        .order_by()
    )
    uses: dict[tuple[str, str, str], dict[str, dt.datetime]] = defaultdict(dict)
    for row in rows:
        key = (row["equipment__code"], row["equipment__name"], row["batch_number"])
        if row["kind"] == LogbookKind.USE_START:
            uses[key]["start"] = row["first"]
        else:
            uses[key]["end"] = row["last"]
    return [
        EquipmentUse(code, name, number, times.get("start"), times.get("end"))
        for (code, name, number), times in sorted(uses.items())
    ]


def _people(numbers: list[str], parts: dict[tuple[int, str], set[str]]) -> list[PersonPart]:
    """Who performed and verified the batches' steps and who moved their material."""
    steps = (
        BatchStep.objects.filter(batch__number__in=numbers)
        .values_list("batch__number", "started_by_id", "completed_by_id", "verified_by_id")
        .order_by()
        .distinct()
    )
    for number, started, completed, verified in steps:
        for user_id, part in ((started, "performed"), (completed, "performed"), (verified, "verified")):
            if user_id is not None:
                parts[(user_id, number)].add(part)
    names = {
        u.pk: u
        for u in User.objects.filter(pk__in={user_id for user_id, _ in parts}).only("username", "full_name")
    }
    return sorted(
        (
            PersonPart(names[uid].username, names[uid].printed_name, number, tuple(sorted(what)))
            for (uid, number), what in parts.items()
            if uid in names
        ),
        key=lambda p: (p.batch_number, p.username),
    )


# --- recall (GEN-03) -------------------------------------------------------------------------


@dataclass
class Recall:
    """What a recall query reached: the lots it started from, the batches, and the forward trace."""

    question: str
    start_lots: list[int]
    batches_on_unit: list[str]
    trace: Trace


def recall_supplier_lot(supplier_lot: str) -> Recall:
    """Every lot a supplier's lot reached: the lots received under that number, traced forward."""
    text = supplier_lot.strip()
    starts = (
        list(Lot.objects.filter(supplier_lot=text).order_by("id").values_list("id", flat=True))
        if text
        else []
    )
    return Recall(f"supplier lot {text}", starts, [], forward(starts))


def batches_on_unit(code: str, start: dt.datetime, end: dt.datetime) -> list[str]:
    """The batches whose use of a unit overlapped ``start``–``end`` (a use still open counts)."""
    unit = Equipment.objects.filter(code=code).values_list("pk", flat=True).first()
    if unit is None:
        return []
    began = dict(
        LogbookEntry.objects.filter(equipment_id=unit, kind=LogbookKind.USE_START, at__lte=end)
        .exclude(batch_number="")
        .values("batch_number")
        .annotate(first=Min("at"))
        .order_by()
        .values_list("batch_number", "first")
    )
    ended = dict(
        LogbookEntry.objects.filter(equipment_id=unit, kind=LogbookKind.USE_END, batch_number__in=list(began))
        .values("batch_number")
        .annotate(last=Max("at"))
        .order_by()
        .values_list("batch_number", "last")
    )
    return sorted(n for n in began if n not in ended or ended[n] >= start)


def recall_equipment(code: str, start: dt.datetime, end: dt.datetime) -> Recall:
    """Every lot made on a unit between two instants, and every lot those lots went into."""
    numbers = batches_on_unit(code, start, end)
    starts = list(
        Lot.objects.filter(produced_by_batch__in=numbers).order_by("id").values_list("id", flat=True)
    )
    return Recall(
        f"unit {code} from {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M}", starts, numbers, forward(starts)
    )
