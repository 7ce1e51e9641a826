"""ERP outbound: at each step the ERP needs, a B2MML V0700 document in the outbox (S95-02, A11-07).

Execution, materials and quality publish what happened (outbox/events.py) and never import this
app; :func:`connect` subscribes the handlers below when Django starts (erp/apps.py). A handler runs
inside the transaction of the change it reports: it reads the batch or lot as it now stands,
builds the document (erp/performance.py), validates it against MESA's schemas and writes it to the
outbox for the destination ``erp``, so the message commits or rolls back with the change. An
invalid document is Batchline's own bug: it refuses the change (:class:`OutboundInvalid`) rather
than leave the ERP a step short or send it what it cannot read. An installation with no ``erp``
destination reads nothing and writes nothing here.

Every document states the whole of its object as it stands after the event (a Sync), not the
difference: the ERP books what it has not booked yet, so a replay, a retry or a lost
acknowledgement never books a quantity twice. docs/integration.md has the events, the field map,
the keys and the ordering.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core import checks
from django.utils import timezone
from lxml import etree

from batchline.execution.models import Batch, BatchState, BatchStep, StepState
from batchline.masterdata.imports import SCHEMA_FILE, ImportRefused, b2mml_schema
from batchline.materials.models import Consumption, Container, LedgerEntry, Lot, Movement
from batchline.outbox import events
from batchline.outbox.services import configured, enqueue
from batchline.reports.batchml import schema_dir
from batchline.rules.verdict import Refused

from . import performance as b2mml

DESTINATION = "erp"
CONTENT_TYPE = "application/xml"


def order_id_of(batch_number: str) -> str:
    """The ERP's ID of the order a batch was made for: its OperationsRequestID in every document.

    A batch created from an ERP order answers with that order's own ID (SAP's AUFNR), so the ERP
    books the performance against its order; a batch created by hand has no other name than its number.
    """
    from .models import ErpOrder

    order = ErpOrder.objects.filter(batch__number=batch_number).values_list("order_id", flat=True).first()
    return order or batch_number


class OutboundInvalid(Refused):
    """A document for the ERP failed its schema: the change that would have sent it is not made."""


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True)


def _missing() -> str:
    return (
        f"MESA's B2MML V0700 schemas are not at {schema_dir() / SCHEMA_FILE}: point "
        "BATCHLINE_B2MML_SCHEMAS at them (docs/master-data-import.md)."
    )


def validate(xml: bytes) -> list[str]:
    """Every error of ``xml`` against B2MML V0700 (the compiled schema of masterdata imports)."""
    try:
        schema = b2mml_schema()
    except ImportRefused as exc:
        raise OutboundInvalid.because(
            "B2MML_SCHEMAS_MISSING",
            f"A message to the ERP cannot be checked, so the change was not made. {_missing()}",
        ) from exc
    document = etree.fromstring(xml, _parser())
    if schema.validate(document):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log]


def _send(*, stream: str, kind: str, key: str, body: bytes) -> None:
    problems = validate(body)
    if problems:
        raise OutboundInvalid.because(
            "ERP_MESSAGE_INVALID",
            f"The {kind} message for the ERP ({key}) is not valid B2MML V0700, so the change was not "
            f"made: {problems[0]}. This is a fault in Batchline, not in what was entered: report it "
            "with this message.",
        )
    enqueue(
        DESTINATION, stream=stream, kind=kind, body=body.decode("utf-8"), content_type=CONTENT_TYPE, key=key
    )


def _bod(event: str, key: str) -> b2mml.Bod:
    return b2mml.Bod(sender=settings.OUTBOX_SOURCE, task=event, key=key, created_at=timezone.now())


def _key(*parts: str) -> str:
    return ":".join((settings.OUTBOX_SOURCE, DESTINATION, *parts))


# --- the batch's performance ------------------------------------------------------------------


def _segment_state(states: Sequence[str], batch_state: str) -> str:
    if all(s == StepState.DONE for s in states):
        return "Completed"
    if batch_state == BatchState.ABORTED:
        return "Aborted"
    if all(s == StepState.PENDING for s in states):
        return "Waiting"
    return "Held" if batch_state == BatchState.HELD else "Running"


def _ended(rows: Iterable[tuple[str, Any, Any, Any]]) -> dt.datetime | None:
    """When the last of ``rows`` (state, started, completed, verified) was done; None while one is open."""
    ends = []
    for state, _started, completed, verified in rows:
        if state != StepState.DONE:
            return None
        ends += [t for t in (completed, verified) if t is not None]
    return max(ends, default=None)


def _started(rows: Iterable[tuple[str, Any, Any, Any]]) -> dt.datetime | None:
    return min((started for _s, started, _c, _v in rows if started is not None), default=None)


def _lot_quantities(
    rows: Iterable[tuple[str, str, str, str, str, Decimal, str]], operation_of: dict[str, str], last: str
) -> dict[str, list[b2mml.LotQuantity]]:
    """Per operation, the quantity of each lot in each unit, with the containers it went through.

    ``rows``: (step key, use, material, lot, container, quantity, unit) in the order recorded. A
    movement recorded outside a step (output through the API) counts in the last operation.
    """
    grouped: dict[str, dict[tuple[str, str, str, str], list[Any]]] = defaultdict(dict)
    for step_key, use, material, lot, container, quantity, unit in rows:
        here = grouped[operation_of.get(step_key, last)]
        entry = here.setdefault((use, material, lot, unit), [Decimal(0), []])
        entry[0] += quantity
        if container not in entry[1]:
            entry[1].append(container)
    return {
        op: [
            b2mml.LotQuantity(use=use, material=material, lot=lot, quantity=q, unit=unit, containers=tuple(c))
            for (use, material, lot, unit), (q, c) in lots.items()
        ]
        for op, lots in grouped.items()
    }


def performance_of(batch_number: str) -> b2mml.Performance:
    """The batch as it stands: state, times, and per operation every lot consumed and produced.

    Four queries whatever the batch's size: the batch (its control recipe names the operations),
    its steps' states and times, its consumptions, its output's PRODUCE entries.
    """
    batch = Batch.objects.select_related("recipe", "erp_order").get(number=batch_number)
    steps = {
        key: (state, started, completed, verified)
        for key, state, started, completed, verified in BatchStep.objects.filter(batch=batch).values_list(
            "key", "state", "started_at", "completed_at", "verified_at"
        )
    }
    operations = [
        (op["key"], op["name"], [s["key"] for s in op["steps"]]) for op in batch.control_recipe["operations"]
    ]
    operation_of = {step: key for key, _name, keys in operations for step in keys}
    last = operations[-1][0]
    consumed = Consumption.objects.filter(batch_number=batch_number).order_by("id")
    produced = LedgerEntry.objects.filter(batch_number=batch_number, kind=Movement.PRODUCE).order_by("id")
    rows = [
        (step, "Consumed", material, lot, container, quantity, unit)
        for step, material, lot, container, quantity, unit in consumed.values_list(
            "step_key", "lot__material__code", "lot__number", "container__code", "quantity", "unit"
        )
    ]
    statuses: dict[tuple[str, str], str] = {}
    for step, material, lot, status, container, quantity, unit in produced.values_list(
        "step_key",
        "container__lot__material__code",
        "container__lot__number",
        "container__lot__status",
        "container__code",
        "quantity",
        "unit",
    ):
        statuses[material, lot] = status
        rows.append((step, "Produced", material, lot, container, quantity, unit))
    by_operation = _lot_quantities(rows, operation_of, last)
    segments = []
    for key, name, keys in operations:
        mine = [steps[k] for k in keys if k in steps]
        lots = [
            m if m.use != "Produced" else _with_status(m, statuses[m.material, m.lot])
            for m in by_operation.get(key, [])
        ]
        segments.append(
            b2mml.Segment(
                key=key,
                name=name,
                state=_segment_state([s[0] for s in mine], batch.state),
                started_at=_started(mine),
                ended_at=_ended(mine),
                materials=tuple(lots),
            )
        )
    return b2mml.Performance(
        batch=batch.number,
        order_id=batch.erp_order.order_id if hasattr(batch, "erp_order") else batch.number,
        recipe=batch.recipe.code,
        recipe_version=batch.recipe.version,
        state=batch.state,
        state_label=BatchState(batch.state).label,
        started_at=_started(steps.values()),
        ended_at=_ended(steps.values()),
        segments=tuple(segments),
    )


def _with_status(m: b2mml.LotQuantity, status: str) -> b2mml.LotQuantity:
    return b2mml.LotQuantity(m.use, m.material, m.lot, m.quantity, m.unit, m.containers, lot_status=status)


def send_performance(batch_number: str, event: str, occurrence: str) -> None:
    """The batch's SyncOperationsPerformance after ``event``, on the batch's stream."""
    if not configured(DESTINATION):
        return
    key = _key(batch_number, occurrence)
    body = b2mml.sync_operations_performance(performance_of(batch_number), _bod(event, key))
    _send(stream=f"batch:{batch_number}", kind=f"SyncOperationsPerformance/{event}", key=key, body=body)


# --- lots --------------------------------------------------------------------------------------


def lot_state_of(material: str, lot_number: str) -> b2mml.LotState:
    """The lot as it stands, with every container (two queries)."""
    lot = Lot.objects.select_related("material").get(material__code=material, number=lot_number)
    containers = Container.objects.filter(lot=lot).order_by("code").values_list("code", "quantity", "unit")
    return b2mml.LotState(
        material=lot.material.code,
        material_name=lot.material.name,
        lot=lot.number,
        status=lot.status,
        unit=lot.material.unit,
        containers=tuple(b2mml.Container(code, quantity, unit) for code, quantity, unit in containers),
        expires_at=lot.expires_at,
        retest_at=lot.retest_at,
        potency=lot.potency,
        produced_by_batch=lot.produced_by_batch,
        order_id=order_id_of(lot.produced_by_batch) if lot.produced_by_batch else "",
    )


def send_lot(material: str, lot_number: str, event: str, occurrence: str) -> None:
    """The lot's SyncMaterialLot after ``event``, on the lot's stream."""
    if not configured(DESTINATION):
        return
    key = _key("lot", f"{material}/{lot_number}", occurrence)
    body = b2mml.sync_material_lot(lot_state_of(material, lot_number), _bod(event, key))
    _send(stream=f"lot:{material}/{lot_number}", kind=f"SyncMaterialLot/{event}", key=key, body=body)


def _stamp(at: dt.datetime) -> str:
    """An instant as it goes into a key: UTC, to the microsecond, no separators a parser trips on."""
    return at.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")


# --- the events ---------------------------------------------------------------------------------


def on_batch_started(*, batch: str, **_: Any) -> None:
    send_performance(batch, "batch.started", "started")


def on_material_consumed(*, batch: str, consumption_id: int, **_: Any) -> None:
    send_performance(batch, "material.consumed", f"consumed:{consumption_id}")


def on_lot_produced(*, batch: str, material: str, lot: str, containers: Sequence[str], **_: Any) -> None:
    # One event per recording, however many containers it filled: the first names it.
    send_performance(batch, "lot.produced", f"produced:{containers[0]}")
    send_lot(material, lot, "lot.produced", f"produced:{containers[0]}")


def on_batch_completed(*, batch: str, **_: Any) -> None:
    send_performance(batch, "batch.completed", "completed")


def on_batch_aborted(*, batch: str, **_: Any) -> None:
    send_performance(batch, "batch.aborted", "aborted")


def on_batch_qa_released(*, batch: str, **_: Any) -> None:
    send_performance(batch, "batch.qa_released", "qa_released")


def on_batch_rejected(*, batch: str, **_: Any) -> None:
    send_performance(batch, "batch.rejected", "rejected")


def on_lot_status_changed(*, lot_id: int, status: str, at: dt.datetime, **_: Any) -> None:
    if not configured(DESTINATION):
        return
    material, number = Lot.objects.filter(pk=lot_id).values_list("material__code", "number").get()
    # A lot may come back to a status it had (released, blocked, released): the instant tells them apart.
    send_lot(material, number, "lot.status_changed", f"status:{status}:{_stamp(at)}")


HANDLERS: dict[str, events.Handler] = {
    "batch.started": on_batch_started,
    "material.consumed": on_material_consumed,
    "lot.produced": on_lot_produced,
    "batch.completed": on_batch_completed,
    "batch.aborted": on_batch_aborted,
    "batch.qa_released": on_batch_qa_released,
    "batch.rejected": on_batch_rejected,
    "lot.status_changed": on_lot_status_changed,
}


def connect() -> None:
    """Subscribe the handlers (AppConfig.ready; subscribing twice is harmless)."""
    for event, handler in HANDLERS.items():
        events.subscribe(event)(handler)
    checks.register(schemas_present)


def schemas_present(**_: Any) -> list[checks.CheckMessage]:
    """An installation that sends to an ERP has the schemas each message is checked against."""
    if not configured(DESTINATION):
        return []
    try:
        b2mml_schema()
    except ImportRefused:
        return [
            checks.Error(
                f"An ERP destination is configured, but no message to it can be checked. {_missing()}",
                hint="Every change that reports to the ERP is refused until the schemas are there.",
                id="batchline.erp.E001",
            )
        ]
    return []
