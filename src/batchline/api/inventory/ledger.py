"""The inventory ledger over the API: every movement of every container, filtered and paged.

Read in the order the entries were written (their ids), so paging with ``offset`` over a
ledger that grows meanwhile never shows an entry twice or skips one written before the first page.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema
from ninja.errors import HttpError
from pydantic import Field

from batchline.materials.models import LedgerEntry, Movement
from batchline.materials.selectors import LedgerFilter, ledger_entries
from batchline.rules.verdict import Refused
from batchline.web.access import require

from .common import VIEW, aware, text

router = Router(tags=["inventory"])


class LedgerEntryOut(Schema):
    id: int
    at: dt.datetime
    kind: str
    material: str
    lot: str
    container: str
    quantity: str = Field(description="signed: + into the container, − out of it")
    unit: str
    balance: str = Field(description="what the container held after it")
    batch_number: str
    step_key: str
    counterpart: str | None = Field(description="the other container of a dispense or a return")
    device: str
    station: str
    user: str
    user_name: str
    reason: str


def _entry(e: LedgerEntry) -> dict[str, Any]:
    lot = e.container.lot
    return {
        "id": e.pk,
        "at": e.at,
        "kind": e.kind,
        "material": lot.material.code,
        "lot": lot.number,
        "container": e.container.code,
        "quantity": text(e.quantity),
        "unit": e.unit,
        "balance": text(e.balance),
        "batch_number": e.batch_number,
        "step_key": e.step_key,
        "counterpart": e.counterpart.code if e.counterpart else None,
        "device": e.device,
        "station": e.station,
        "user": e.user.username,
        "user_name": e.user.printed_name,
        "reason": e.reason,
    }


@router.get("/ledger", response=list[LedgerEntryOut])
def ledger(
    request: HttpRequest,
    material: str = Query("", max_length=40, description="material code"),
    lot: str = Query("", max_length=40, description="lot number (of any material unless one is given)"),
    container: str = Query("", max_length=40, description="container code"),
    kind: str = Query("", max_length=20, description=f"kind of movement: {', '.join(Movement.values)}"),
    batch: str = Query("", max_length=40, description="batch number"),
    since: dt.datetime | None = Query(None, description="from this time on (without an offset: site time)"),  # noqa: B008
    until: dt.datetime | None = Query(None, description="before this time (without an offset: site time)"),  # noqa: B008
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
) -> list[dict[str, Any]]:
    """Movements, oldest first, each with its container, lot, material, person, device and station."""
    require(request.user, VIEW)
    if kind and kind not in Movement.values:
        raise HttpError(422, f"{kind!r} is not a kind of movement ({', '.join(Movement.values)}).")
    try:
        start, end = aware(since, "start"), aware(until, "end")
    except Refused as exc:
        raise HttpError(422, str(exc)) from exc
    if start is not None and end is not None and end < start:
        raise HttpError(422, "The end of the time range comes before its start.")
    found = ledger_entries(
        LedgerFilter(
            material=material,
            lot=lot,
            container=container.strip().upper(),
            kind=kind,
            batch=batch,
            since=start,
            until=end,
        )
    )
    return [_entry(e) for e in found[offset : offset + limit]]
