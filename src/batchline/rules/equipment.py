"""May this equipment be used now? (EQ-01, EQ-02, EQ-04, WD-02; 21 CFR 211.67, 211.68, 211.182)

Plain data in, a :class:`Verdict` out, every failing reason in words an
operator understands, and never a clock call: the service passes the server's
``now``.

One boundary rule, the same as a lot's expiry: something "due at T" is usable
strictly before T; at T itself it is overdue. A clean hold that ends at T
allows use until T − 1 µs; a calibration due at T blocks use from T on.

Hold times turn into status by themselves, at read time: a clean unit past its
clean hold *is* a unit that needs cleaning, and a dirty unit past its dirty
hold is flagged, without a scheduler that might not have run yet.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from .packml import MachineState, machine_reason
from .verdict import Reason, Verdict

# Stored statuses.
CLEAN, IN_USE, DIRTY, CLEANING, MAINTENANCE, OUT_OF_SERVICE = (
    "clean",
    "in_use",
    "dirty",
    "cleaning",
    "maintenance",
    "out_of_service",
)
STATUSES = (CLEAN, IN_USE, DIRTY, CLEANING, MAINTENANCE, OUT_OF_SERVICE)
# Statuses only the clock reaches (effective status, never stored).
CLEAN_HOLD_EXPIRED, DIRTY_HOLD_EXCEEDED = "clean_hold_expired", "dirty_hold_exceeded"
STATUS_LABELS = {
    CLEAN: "clean",
    IN_USE: "in use",
    DIRTY: "dirty",
    CLEANING: "being cleaned",
    MAINTENANCE: "in maintenance",
    OUT_OF_SERVICE: "out of service",
    CLEAN_HOLD_EXPIRED: "needs cleaning (clean hold expired)",
    DIRTY_HOLD_EXCEEDED: "dirty, dirty hold exceeded",
}

# Calibration and maintenance states, beside the status (EQ-01: "separate calibration status").
DUE_VALID, DUE_SOON, DUE_OVERDUE, DUE_NONE = "valid", "due_soon", "overdue", "none"
DUE_SOON_WITHIN = dt.timedelta(days=7)


@dataclass(frozen=True, slots=True)
class EquipmentClassView:
    code: str
    name: str
    dirty_hold: dt.timedelta | None = None  # use end → cleaning start; None: no limit
    clean_hold: dt.timedelta | None = None  # cleaning end → next use; None: no limit
    is_scale: bool = False


@dataclass(frozen=True, slots=True)
class EquipmentView:
    """What the gates need to know about one unit, as read under its row lock."""

    code: str
    name: str
    equipment_class: EquipmentClassView
    status: str
    status_reason: str = ""
    current_batch: str | None = None
    in_use_since: dt.datetime | None = None
    last_used_end: dt.datetime | None = None
    cleaned_at: dt.datetime | None = None
    calibration_due_at: dt.datetime | None = None
    maintenance_due_at: dt.datetime | None = None
    # Scales only: in the scale's own unit.
    capacity: Decimal | None = None
    minimum_weight: Decimal | None = None
    unit: str = ""
    last_check_at: dt.datetime | None = None
    last_check_passed: bool = False
    # Retired in the master data: kept for the records that used it, never used again.
    retired: bool = False
    # What the machine's PLC reports through the gateway (PackML); None: it reports nothing.
    machine: MachineState | None = None

    @property
    def label(self) -> str:
        return f"{self.name} {self.code}" if self.code not in self.name else self.name


@dataclass(frozen=True, slots=True)
class Condition:
    """What the status board shows for one unit at ``now``."""

    status: str  # effective: a stored status, CLEAN_HOLD_EXPIRED or DIRTY_HOLD_EXCEEDED
    clean_until: dt.datetime | None  # when the clean hold ends (clean units)
    dirty_hold_until: dt.datetime | None  # when the dirty hold ends (dirty units with residue)
    calibration: str  # DUE_VALID, DUE_SOON, DUE_OVERDUE or DUE_NONE
    maintenance: str

    @property
    def label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)


# --- telling the time to a person ------------------------------------------------------


def at(instant: dt.datetime, now: dt.datetime, tz: dt.tzinfo) -> str:
    """ "06:10 CET" today, "06:10 CET on 3 March" another day this year, with the year otherwise.

    The zone's name goes with every time told (issue 11): a message read on a page, in the
    record or in an export says which clock it means.
    """
    local, today = instant.astimezone(tz), now.astimezone(tz)
    text = local.strftime("%H:%M %Z")
    if local.date() != today.date():
        text += f" on {local.day} {local.strftime('%B')}"
        if local.year != today.year:
            text += f" {local.year}"
    return text


def span(duration: dt.timedelta) -> str:
    """A hold time as people write it: "72 h", "7 days", "90 min"."""
    seconds = int(duration.total_seconds())
    if seconds % 86400 == 0 and seconds >= 4 * 86400:
        return f"{seconds // 86400} days"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    return f"{seconds // 60} min"


def start_of_day(now: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """Midnight of ``now``'s date in the site's zone (the start of "today" for a daily check)."""
    local = now.astimezone(tz)
    return dt.datetime(local.year, local.month, local.day, tzinfo=tz)


# --- the clock's effect on a unit ------------------------------------------------------


def clean_until(view: EquipmentView) -> dt.datetime | None:
    hold = view.equipment_class.clean_hold
    if view.status != CLEAN or hold is None or view.cleaned_at is None:
        return None
    return view.cleaned_at + hold


def dirty_hold_until(view: EquipmentView) -> dt.datetime | None:
    """When cleaning must have started, for a unit that carries residue of a use (used since cleaned)."""
    hold, used = view.equipment_class.dirty_hold, view.last_used_end
    if view.status not in (DIRTY, MAINTENANCE, OUT_OF_SERVICE) or hold is None or used is None:
        return None
    if view.cleaned_at is not None and view.cleaned_at >= used:
        return None
    return used + hold


def dirty_hold_exceeded(view: EquipmentView, now: dt.datetime) -> bool:
    """Cleaning started too late (or not yet): a deviation-worthy fact (EQ-02)."""
    until = dirty_hold_until(view)
    return until is not None and now >= until


def due_state(due_at: dt.datetime | None, now: dt.datetime) -> str:
    if due_at is None:
        return DUE_NONE
    if now >= due_at:
        return DUE_OVERDUE
    return DUE_SOON if due_at - now <= DUE_SOON_WITHIN else DUE_VALID


def effective_status(view: EquipmentView, now: dt.datetime) -> Condition:
    """The status the clock has made of the stored one (EQ-02: expiry changes status by itself)."""
    status = view.status
    clean_end = clean_until(view)
    if status == CLEAN and (view.cleaned_at is None or (clean_end is not None and now >= clean_end)):
        status = CLEAN_HOLD_EXPIRED
    elif status == DIRTY and dirty_hold_exceeded(view, now):
        status = DIRTY_HOLD_EXCEEDED
    return Condition(
        status=status,
        clean_until=clean_end,
        dirty_hold_until=dirty_hold_until(view),
        calibration=due_state(view.calibration_due_at, now),
        maintenance=due_state(view.maintenance_due_at, now),
    )


# --- gates -----------------------------------------------------------------------------


def _status_reason(view: EquipmentView, now: dt.datetime, tz: dt.tzinfo, batch_number: str) -> Reason | None:
    name = view.label
    if view.retired:
        return Reason("EQUIPMENT_RETIRED", f"{name} is retired in the master data: it is not used any more.")
    if view.status == IN_USE:
        if view.current_batch == batch_number:
            return None  # the same batch scanning its own equipment again
        since = f" since {at(view.in_use_since, now, tz)}" if view.in_use_since else ""
        return Reason(
            "EQUIPMENT_BUSY",
            f"{name} is in use by batch {view.current_batch}{since}: it is released when that batch's step ends.",
        )
    if view.status == DIRTY:
        used = f"was used until {at(view.last_used_end, now, tz)} and " if view.last_used_end else ""
        hold, until = view.equipment_class.dirty_hold, dirty_hold_until(view)
        late = ""
        if hold is not None and until is not None and now >= until:
            late = f" Its dirty hold of {span(hold)} ended at {at(until, now, tz)}."
        return Reason("EQUIPMENT_DIRTY", f"{name} {used}is dirty: clean it before use.{late}")
    if view.status == CLEAN:
        if view.cleaned_at is None:
            return Reason("CLEAN_HOLD_EXPIRED", f"{name} has no recorded cleaning: clean it before use.")
        hold, until = view.equipment_class.clean_hold, clean_until(view)
        if hold is not None and until is not None and now >= until:
            return Reason(
                "CLEAN_HOLD_EXPIRED",
                f"{name} was cleaned at {at(view.cleaned_at, now, tz)}; its clean hold of "
                f"{span(hold)} ended at {at(until, now, tz)}: clean it again.",
            )
        return None
    if view.status == CLEANING:
        return Reason(
            "CLEANING_IN_PROGRESS", f"{name} is being cleaned: wait until the cleaning is recorded as done."
        )
    if view.status == MAINTENANCE:
        return Reason("IN_MAINTENANCE", f"{name} is in maintenance: it cannot be used.")
    if view.status == OUT_OF_SERVICE:
        why = f" ({view.status_reason})" if view.status_reason else ""
        return Reason("OUT_OF_SERVICE", f"{name} is out of service{why}: it cannot be used.")
    return Reason("UNKNOWN_STATUS", f"{name} has the unknown status {view.status!r}: it cannot be used.")


def _due_reasons(view: EquipmentView, now: dt.datetime, tz: dt.tzinfo) -> list[Reason]:
    reasons = []
    if view.calibration_due_at is not None and now >= view.calibration_due_at:
        reasons.append(
            Reason(
                "CALIBRATION_OVERDUE",
                f"{view.label} was due for calibration at {at(view.calibration_due_at, now, tz)}: "
                "it cannot be used until it is calibrated.",
            )
        )
    if view.maintenance_due_at is not None and now >= view.maintenance_due_at:
        reasons.append(
            Reason(
                "MAINTENANCE_OVERDUE",
                f"{view.label} was due for maintenance at {at(view.maintenance_due_at, now, tz)}: "
                "it cannot be used until the maintenance is done.",
            )
        )
    return reasons


def may_use(
    view: EquipmentView,
    now: dt.datetime,
    batch_number: str,
    required_class: str | None = None,
    tz: dt.tzinfo = dt.UTC,
) -> Verdict:
    """Everything the equipment identification gate checks, every failing reason at once."""
    if required_class is not None and view.equipment_class.code != required_class:
        return Verdict.of(
            Reason(
                "WRONG_EQUIPMENT_CLASS",
                f"{view.label} is a {view.equipment_class.name.lower()} ({view.equipment_class.code}); "
                f"this step needs a {required_class}: scan the right equipment.",
            )
        )
    when = at(view.machine.at, now, tz) if view.machine is not None and view.machine.at else ""
    return Verdict.of(
        _status_reason(view, now, tz, batch_number),
        *_due_reasons(view, now, tz),
        machine_reason(view.label, view.machine, when),
    )


def _qty(value: Decimal) -> str:
    return f"{value.normalize():f}"


def scale_fits(
    view: EquipmentView,
    now: dt.datetime,
    target: Decimal | None,
    unit: str,
    tz: dt.tzinfo = dt.UTC,
) -> Verdict:
    """May this scale weigh ``target``? (WD-02)

    ``target`` is already converted to the scale's unit (``view.unit``); None
    when ``unit`` cannot be converted to it. ``unit`` is what the target was
    given in, for the message.
    """
    name = view.label
    if not view.equipment_class.is_scale:
        return Verdict.of(Reason("NOT_A_SCALE", f"{name} is not a scale: scan a scale."))
    reasons: list[Reason | None] = []
    if view.status in (MAINTENANCE, OUT_OF_SERVICE) or view.retired:
        reasons.append(_status_reason(view, now, tz, ""))
    reasons += [r for r in _due_reasons(view, now, tz) if r.code == "CALIBRATION_OVERDUE"]
    today = start_of_day(now, tz)
    if view.last_check_at is None or view.last_check_at < today:
        last = f"; the last was at {at(view.last_check_at, now, tz)}" if view.last_check_at else ""
        reasons.append(
            Reason(
                "DAILY_CHECK_MISSING", f"{name} has not had today's check{last}: check it before weighing."
            )
        )
    elif not view.last_check_passed:
        reasons.append(
            Reason(
                "DAILY_CHECK_FAILED",
                f"{name} failed its check at {at(view.last_check_at, now, tz)}: it cannot be used.",
            )
        )
    if target is None:
        reasons.append(
            Reason(
                "WRONG_UNIT", f"{name} weighs in {view.unit}; a quantity in {unit} cannot be weighed on it."
            )
        )
    else:
        if view.capacity is not None and target > view.capacity:
            reasons.append(
                Reason(
                    "CAPACITY_EXCEEDED",
                    f"{name} weighs up to {_qty(view.capacity)} {view.unit}; "
                    f"{_qty(target)} {view.unit} is more: use a larger scale.",
                )
            )
        if view.minimum_weight is not None and target < view.minimum_weight:
            reasons.append(
                Reason(
                    "BELOW_MINIMUM_WEIGHT",
                    f"{name} has a minimum weight of {_qty(view.minimum_weight)} {view.unit}; "
                    f"{_qty(target)} {view.unit} is less and would not be weighed accurately: use a finer scale.",
                )
            )
    return Verdict.of(*reasons)


# --- status transitions ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Transition:
    command: str
    source: frozenset[str]
    target: str
    reason_required: bool = False


def _t(command: str, source: str, target: str, *, reason_required: bool = False) -> Transition:
    return Transition(command, frozenset(source.split()), target, reason_required)


# Which command moves a unit from which status to which (EQ-01). Claim and release
# come from batch execution; the rest are people recording what they did.
TRANSITIONS = {
    t.command: t
    for t in [
        _t("claim", "clean", IN_USE),
        _t("release", "in_use", DIRTY),
        _t("cleaning_start", "dirty clean", CLEANING),
        _t("cleaning_end", "cleaning", CLEAN),
        _t("maintenance_start", "clean dirty out_of_service", MAINTENANCE, reason_required=True),
        _t("maintenance_end", "maintenance", DIRTY),  # after hands and tools were in it: clean it
        _t("take_out_of_service", "clean dirty cleaning maintenance", OUT_OF_SERVICE, reason_required=True),
        _t("return_to_service", "out_of_service", DIRTY, reason_required=True),
    ]
}
COMMAND_WORDS = {
    "claim": "use",
    "release": "release",
    "cleaning_start": "start cleaning",
    "cleaning_end": "finish cleaning",
    "maintenance_start": "start maintenance",
    "maintenance_end": "end maintenance",
    "take_out_of_service": "take out of service",
    "return_to_service": "return to service",
}


def may_transition(view: EquipmentView, command: str) -> Verdict:
    t = TRANSITIONS.get(command)
    if t is None:
        return Verdict.of(Reason("UNKNOWN_COMMAND", f"{command!r} is not something equipment can do."))
    if view.status in t.source:
        return Verdict()
    allowed = " or ".join(sorted(STATUS_LABELS[s] for s in t.source))
    return Verdict.of(
        Reason(
            "ILLEGAL_TRANSITION",
            f"{view.label} is {STATUS_LABELS.get(view.status, view.status)}: "
            f"'{COMMAND_WORDS[command]}' is possible only when it is {allowed}.",
        )
    )
