"""Equipment and training over the API: the services and selectors the pages use.

Claiming and releasing equipment is not an endpoint of its own: a batch's
equipment identification step does it, so a unit is never in use outside a
batch record. A rule's refusal is 409 with every reason.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.http import Http404, HttpRequest
from django.utils import timezone
from ninja import Query, Router, Schema
from pydantic import Field

from batchline.audit.services import Actor
from batchline.equipment import selectors, services
from batchline.equipment.models import Equipment
from batchline.training import selectors as training_selectors
from batchline.web.access import current_user, require

from .schemas import Problem


class Refusal(Schema):
    detail: str
    code: str
    reasons: list[dict[str, str]]


equipment = Router(tags=["equipment"])


class EquipmentOut(Schema):
    code: str
    name: str
    equipment_class: str
    site: str
    status: str = Field(description="stored status")
    effective_status: str = Field(description="status at the server's time, hold times applied")
    effective_status_label: str
    status_reason: str
    current_batch: str | None
    clean_until: dt.datetime | None
    dirty_hold_until: dt.datetime | None
    cleaned_at: dt.datetime | None
    last_used_end: dt.datetime | None
    calibration_due_at: dt.datetime | None
    calibration: str
    maintenance_due_at: dt.datetime | None
    maintenance: str
    is_scale: bool
    capacity: Decimal | None
    minimum_weight: Decimal | None
    unit: str
    checked_today: bool


def _out(row: selectors.BoardRow) -> dict[str, Any]:
    e, c = row.equipment, row.condition
    return {
        "code": e.code,
        "name": e.name,
        "equipment_class": e.equipment_class.code,
        "site": e.site.code,
        "status": e.status,
        "effective_status": c.status,
        "effective_status_label": c.label,
        "status_reason": e.status_reason,
        "current_batch": e.current_batch,
        "clean_until": c.clean_until,
        "dirty_hold_until": c.dirty_hold_until,
        "cleaned_at": e.cleaned_at,
        "last_used_end": e.last_used_end,
        "calibration_due_at": e.calibration_due_at,
        "calibration": c.calibration,
        "maintenance_due_at": e.maintenance_due_at,
        "maintenance": c.maintenance,
        "is_scale": e.equipment_class.is_scale,
        "capacity": e.capacity,
        "minimum_weight": e.minimum_weight,
        "unit": e.unit,
        "checked_today": row.today_checked,
    }


def _unit(code: str) -> Equipment:
    try:
        return selectors.equipment_by_code(code)
    except Equipment.DoesNotExist as exc:
        raise Http404(f"No equipment {code}") from exc


@equipment.get("", response=list[EquipmentOut])
def equipment_list(request: HttpRequest) -> list[dict[str, Any]]:
    """Every unit with its effective status at the server's time (the status board)."""
    require(request.user, "equipment.view_equipment")
    return [_out(row) for row in selectors.board(timezone.now())]


@equipment.get("/{code}", response=EquipmentOut)
def equipment_get(request: HttpRequest, code: str) -> dict[str, Any]:
    require(request.user, "equipment.view_equipment")
    return _out(selectors.board_row(_unit(code), timezone.now()))


class LogbookEntryOut(Schema):
    id: int
    kind: str
    at: dt.datetime
    user: str | None
    user_name: str | None
    batch_number: str
    product: str
    text: str
    corrects: int | None
    corrected_by: list[int]
    reason: str


@equipment.get("/{code}/logbook", response=list[LogbookEntryOut])
def equipment_logbook(request: HttpRequest, code: str) -> list[dict[str, Any]]:
    """The unit's logbook in time order; a correction is its own entry pointing at the original (LOG-01, LOG-03)."""
    require(request.user, "equipment.view_equipment")
    return [
        {
            "id": e.pk,
            "kind": e.kind,
            "at": e.at,
            "user": e.user.username if e.user else None,
            "user_name": e.user.printed_name if e.user else None,
            "batch_number": e.batch_number,
            "product": e.product,
            "text": e.text,
            "corrects": e.corrects_id,
            "corrected_by": [c.pk for c in e.corrections.all()],
            "reason": e.reason,
        }
        for e in selectors.logbook(_unit(code))
    ]


class CleaningIn(Schema):
    text: str = Field(default="", max_length=2000)


def _cleaning(request: HttpRequest, code: str, payload: CleaningIn, record: Any) -> dict[str, Any]:
    require(request.user, "equipment.record_cleaning")
    unit = record(actor=Actor.of(current_user(request), via="api"), code=_unit(code).code, text=payload.text)
    return _out(selectors.board_row(_unit(unit.code), timezone.now()))


CLEANING_RESPONSES = {200: EquipmentOut, 403: Problem, 404: Problem, 409: Refusal}


@equipment.post("/{code}/cleaning/start", response=CLEANING_RESPONSES)
def cleaning_start(request: HttpRequest, code: str, payload: CleaningIn) -> Any:
    """Cleaning begins, as on the unit's page (EQ-02, LOG-01)."""
    return _cleaning(request, code, payload, services.cleaning_start)


@equipment.post("/{code}/cleaning/end", response=CLEANING_RESPONSES)
def cleaning_end(request: HttpRequest, code: str, payload: CleaningIn) -> Any:
    """Cleaning done: the clean hold starts (EQ-02, LOG-01)."""
    return _cleaning(request, code, payload, services.cleaning_end)


training = Router(tags=["training"])


class TrainingRecordOut(Schema):
    id: int
    user: str
    user_name: str
    qualification: str
    title: str
    version: int
    trained_at: dt.datetime
    expires_at: dt.datetime | None
    state: str = Field(description="current, expired, outdated (older SOP version) or future")
    recorded_by: str
    recorded_at: dt.datetime
    note: str


class TrainingFilter(Schema):
    user: str | None = Field(default=None, max_length=150, description="a username")
    code: str | None = Field(default=None, max_length=60, description="a qualification code")


@training.get("/records", response=list[TrainingRecordOut])
def training_records(request: HttpRequest, filters: Query[TrainingFilter]) -> list[dict[str, Any]]:
    """Training records; without ``training.view_trainingrecord`` only your own."""
    user = current_user(request)
    if not user.has_perm("training.view_trainingrecord"):
        if filters.user not in (None, user.username):
            require(user, "training.view_trainingrecord")
        filters.user = user.username
    rows = training_selectors.training_records(code=filters.code)
    if filters.user is not None:
        rows = rows.filter(user__username=filters.user)
    now = timezone.now()
    return [
        {
            "id": r.pk,
            "user": r.user.username,
            "user_name": r.user.printed_name,
            "qualification": r.qualification.code,
            "title": r.qualification.title,
            "version": r.version,
            "trained_at": r.trained_at,
            "expires_at": r.expires_at,
            "state": training_selectors.record_state(r, now),
            "recorded_by": r.recorded_by.username,
            "recorded_at": r.recorded_at,
            "note": r.note,
        }
        for r in rows[:1000]
    ]
