"""Genealogy over the API: backward and forward traces of a lot, recall queries, recording output (GEN-01…03)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from typing import Any

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Query, Router, Schema, Status
from pydantic import Field

from batchline.audit.services import Actor
from batchline.execution import services
from batchline.execution.models import Batch
from batchline.genealogy import selectors as gen
from batchline.materials.models import Lot
from batchline.web.access import require

from .production import Refusal
from .schemas import Problem

TRACE = "materials.trace_lot"

genealogy = Router(tags=["genealogy"])


class LotNodeOut(Schema):
    id: int
    number: str
    material_code: str
    material_name: str
    status: str
    supplier: str
    supplier_lot: str
    produced_by_batch: str
    depth: int


class BatchNodeOut(Schema):
    number: str
    product_code: str
    product_name: str
    state: str
    created_at: dt.datetime | None
    depth: int


class FlowOut(Schema):
    kind: str
    lot_id: int
    batch_number: str
    quantity: Decimal
    unit: str


class ContainerOut(Schema):
    code: str
    lot_id: int
    batch_number: str
    kind: str = Field(description="consumed, produced, returned (to stock) or wasted")
    quantity: Decimal
    unit: str
    into: str = Field(default="", description="for a return: the stock container it went back into")


class EquipmentOut(Schema):
    code: str
    name: str
    batch_number: str
    started_at: dt.datetime | None
    ended_at: dt.datetime | None


class PersonOut(Schema):
    username: str
    printed_name: str
    batch_number: str
    parts: list[str]


class TraceOut(Schema):
    direction: str
    roots: list[int]
    lots: list[LotNodeOut]
    batches: list[BatchNodeOut]
    flows: list[FlowOut]
    containers: list[ContainerOut]
    equipment: list[EquipmentOut]
    people: list[PersonOut]


class RecallOut(Schema):
    question: str
    start_lots: list[int]
    batches_on_unit: list[str]
    trace: TraceOut


class RecallQuery(Schema):
    supplier_lot: str = Field(default="", max_length=60)
    equipment: str = Field(default="", max_length=40)
    start: dt.datetime | None = None
    end: dt.datetime | None = None


class ProduceIn(Schema):
    quantities: list[Decimal | str] = Field(
        min_length=1,
        max_length=200,
        description="each container's quantity: a JSON number, or the text as typed (read in the site's notation)",
    )
    unit: str = Field(max_length=30)
    step_key: str = Field(default="", max_length=40)


class ContainerMade(Schema):
    code: str
    lot: str
    quantity: Decimal
    unit: str


@genealogy.get("/lots/{lot_id}/backward", response=TraceOut)
def trace_backward(request: HttpRequest, lot_id: int) -> Any:
    require(request.user, TRACE)
    return dataclasses.asdict(gen.backward(get_object_or_404(Lot, pk=lot_id).pk))


@genealogy.get("/lots/{lot_id}/forward", response=TraceOut)
def trace_forward(request: HttpRequest, lot_id: int) -> Any:
    require(request.user, TRACE)
    return dataclasses.asdict(gen.forward(get_object_or_404(Lot, pk=lot_id).pk))


@genealogy.get("/recall", response={200: RecallOut, 403: Problem, 422: Problem})
def recall(request: HttpRequest, q: Query[RecallQuery]) -> Any:
    """Every lot a supplier lot reached, or every lot made on a unit between ``start`` and ``end``."""
    require(request.user, TRACE)
    if q.supplier_lot.strip() and not q.equipment.strip():
        return dataclasses.asdict(gen.recall_supplier_lot(q.supplier_lot))
    if q.equipment.strip() and not q.supplier_lot.strip():
        if q.start is None or q.end is None or q.start > q.end:
            return Status(
                422,
                {"detail": "Give the start and the end of the time window, start first.", "code": "WINDOW"},
            )
        return dataclasses.asdict(gen.recall_equipment(q.equipment.strip(), q.start, q.end))
    return Status(
        422,
        {"detail": "Ask for a supplier lot, or for an equipment unit and a time window.", "code": "QUESTION"},
    )


@genealogy.post(
    "/batches/{number}/produce", response={201: list[ContainerMade], 403: Problem, 404: Problem, 409: Refusal}
)
def produce(request: HttpRequest, number: str, payload: ProduceIn) -> Any:
    """Record a running batch's output into new containers of its output lot."""
    require(request.user, "execution.execute_batch")
    batch = get_object_or_404(Batch, number=number)
    made = services.batch_produce(
        actor=Actor.of(request.user, via="api"),
        batch=batch,
        quantities=payload.quantities,
        unit=payload.unit,
        step_key=payload.step_key,
    )
    return Status(
        201, [{"code": c.code, "lot": c.lot.number, "quantity": c.quantity, "unit": c.unit} for c in made]
    )
