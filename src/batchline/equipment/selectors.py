"""Reads of equipment that the pages, the API and the services share (EQ-01, EQ-02, LOG-01, WD-02)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db.models import Prefetch, QuerySet

from batchline import units
from batchline.rules import equipment as eq
from batchline.rules.packml import MachineState
from batchline.rules.verdict import Reason, Verdict

from .models import Equipment, EquipmentClass, LogbookEntry, Site


def site_tz(site: Site) -> dt.tzinfo:
    """The site's zone for messages and "today" (a daily check); storage is UTC whatever it says."""
    return _zone(site.time_zone) or dt.UTC


def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def display_zone() -> ZoneInfo:
    """The one zone every page, record and message shows times in: the site's (issue 11).

    An installation serves one site (docs/architecture.md), and its ``Site.time_zone``
    (plant master data, changed only with a reason in the audit trail) is that zone, so a
    unit's hold times, a scale's "today" and every time on a page agree. Before the site is
    set up, or if sites were given different zones, ``BATCHLINE_TIME_ZONE`` (settings.TIME_ZONE)
    is. Read on each request (one statement on a table of a row or two): a changed site zone
    shows at the next click, in every process.
    """
    zones = list(Site.objects.order_by().values_list("time_zone", flat=True).distinct()[:2])
    found = _zone(zones[0]) if len(zones) == 1 else None
    return found or ZoneInfo(settings.TIME_ZONE)


def class_view(c: EquipmentClass) -> eq.EquipmentClassView:
    return eq.EquipmentClassView(
        code=c.code,
        name=c.name,
        dirty_hold=dt.timedelta(hours=c.dirty_hold_hours) if c.dirty_hold_hours is not None else None,
        clean_hold=dt.timedelta(hours=c.clean_hold_hours) if c.clean_hold_hours is not None else None,
        is_scale=c.is_scale,
    )


def equipment_view(e: Equipment) -> eq.EquipmentView:
    """The rules' picture of a unit (read it under its row lock when a decision follows)."""
    return eq.EquipmentView(
        code=e.code,
        name=e.name,
        equipment_class=class_view(e.equipment_class),
        status=e.status,
        status_reason=e.status_reason,
        current_batch=e.current_batch,
        in_use_since=e.in_use_since,
        last_used_end=e.last_used_end,
        cleaned_at=e.cleaned_at,
        calibration_due_at=e.calibration_due_at,
        maintenance_due_at=e.maintenance_due_at,
        capacity=Decimal(e.capacity) if e.capacity is not None else None,
        minimum_weight=Decimal(e.minimum_weight) if e.minimum_weight is not None else None,
        unit=e.unit,
        last_check_at=e.last_check_at,
        last_check_passed=e.last_check_passed,
        retired=e.retired_at is not None,
        machine=machine_of(e),
    )


def machine_of(e: Equipment) -> MachineState | None:
    if e.machine_reported_at is None:
        return None
    return MachineState(
        state=e.machine_state, mode=e.machine_mode, at=e.machine_reported_at, known=e.machine_known
    )


def normalise_code(code: str) -> str:
    """Codes are stored in capitals; a scanner or a person may type them otherwise."""
    return code.strip().upper()[:40]


def equipment_by_code(code: str) -> Equipment:
    """Raises ``Equipment.DoesNotExist``."""
    return Equipment.objects.select_related("equipment_class", "site").get(code=normalise_code(code))


@dataclass(frozen=True, slots=True)
class BoardRow:
    equipment: Equipment
    condition: eq.Condition
    today_checked: bool  # scales: a passed check since midnight, site time


def _row(e: Equipment, now: dt.datetime) -> BoardRow:
    view = equipment_view(e)
    checked = bool(
        view.last_check_passed
        and view.last_check_at is not None
        and view.last_check_at >= eq.start_of_day(now, site_tz(e.site))
    )
    return BoardRow(equipment=e, condition=eq.effective_status(view, now), today_checked=checked)


def board(now: dt.datetime) -> list[BoardRow]:
    """Every unit with its effective status at ``now`` (the server's clock), in one query."""
    units_ = Equipment.objects.select_related("equipment_class", "site").order_by(
        "equipment_class__code", "code"
    )
    return [_row(e, now) for e in units_]


def board_row(e: Equipment, now: dt.datetime) -> BoardRow:
    return _row(e, now)


def logbook(equipment: Equipment) -> QuerySet[LogbookEntry]:
    """A unit's logbook in time order, with who wrote each line and what corrects it (LOG-01, LOG-03)."""
    return (
        LogbookEntry.objects.filter(equipment=equipment)
        .select_related("user", "corrects")
        .prefetch_related(
            Prefetch("corrections", queryset=LogbookEntry.objects.select_related("user").order_by("at", "id"))
        )
        .order_by("at", "id")
    )


def scale_suitable(*, code: str, target: Decimal, unit: str, now: dt.datetime) -> Verdict:
    """May the scale with ``code`` weigh ``target`` ``unit`` at ``now``? (WD-02) The weighing step asks this."""
    try:
        scale = equipment_by_code(code)
    except Equipment.DoesNotExist:
        return Verdict.of(unknown(code))
    view = equipment_view(scale)
    converted: Decimal | None
    try:
        converted = units.convert(target, unit, view.unit) if view.unit else None
    except Exception:  # pint: not a unit, or not a mass; either way this scale cannot weigh it
        converted = None
    return eq.scale_fits(view, now, converted, unit, site_tz(scale.site))


def unknown(code: str) -> Reason:
    return Reason(
        "UNKNOWN_EQUIPMENT", f"No equipment has the code {code.strip()!r}: scan the label on the unit."
    )


def signed_content(entry: LogbookEntry) -> dict[str, object]:
    """What a signed logbook line's signature is bound to: the line itself (21 CFR 11.70)."""
    return {
        "equipment": entry.equipment.code,
        "kind": entry.kind,
        "at": entry.at,
        "user": entry.user_id,
        "batch_number": entry.batch_number,
        "product": entry.product,
        "text": entry.text,
        "corrects": entry.corrects_id,
        "reason": entry.reason,
    }
