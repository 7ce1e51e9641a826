"""Equipment status, cleaning, maintenance, calibration and the logbook: every write (EQ-01…04, LOG-01…03).

Each function is one user action: it opens a transaction (a savepoint when the
caller already has one, as batch execution does), locks the unit's row, asks
``rules.equipment`` at the server's time, and writes the change, its audit
entries and the logbook line together, so nobody writes the logbook twice
(LOG-02). A refusal raises :class:`EquipmentRefused` with every reason and
writes nothing; whether a refusal is itself recorded for QA is the caller's
business (execution records refused step actions as exceptions).

None of these functions signs on its own: those that take a signature get a
:class:`VerifiedSigner` authenticated before the transaction, so they can run
inside execution's transaction as well as on their own.
"""

from __future__ import annotations

import datetime as dt
import functools
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from batchline.audit.services import Actor, record_create, record_update
from batchline.rules import equipment as eq
from batchline.rules.verdict import Refused, Verdict
from batchline.signatures.models import Meaning
from batchline.signatures.services import VerifiedSigner, signature_apply
from batchline.sqlrows import Reader

from .models import Equipment, EquipmentClass, EquipmentStatus, LogbookEntry, LogbookKind, Site
from .selectors import equipment_view, normalise_code, signed_content, site_tz, unknown
from .stations import registered_station_only


class EquipmentRefused(Refused):
    """A rule said no; ``verdict.reasons`` say why, in words for the person at the unit."""


_refuse = EquipmentRefused.because


def _text(value: str, limit: int = 2000) -> str:
    return value.strip()[:limit]


_units, _classes, _sites = Reader(Equipment), Reader(EquipmentClass), Reader(Site)


@functools.cache
def _lock_sql(vendor: str) -> str:
    lock = " FOR UPDATE OF e" if vendor == "postgresql" else ""
    return (
        f"SELECT {_units.columns('e')}, {_classes.columns('c')}, {_sites.columns('s')} "  # noqa: S608
        f"FROM {Equipment._meta.db_table} e "
        f"JOIN {EquipmentClass._meta.db_table} c ON c.id = e.equipment_class_id "
        f"JOIN {Site._meta.db_table} s ON s.id = e.site_id WHERE e.code = %s{lock}"
    )


def _locked(code: str) -> Equipment:
    """The unit's row, locked until the transaction ends: its status is decided and written under the lock.

    With its class and site, in one constant statement (a scan's hot path: the
    ORM took longer to build the query than the database to run it).
    """
    with connection.cursor() as cursor:
        cursor.execute(_lock_sql(connection.vendor), [normalise_code(code)])
        row = cursor.fetchone()
    if row is None:
        raise EquipmentRefused(Verdict.of(unknown(code)))
    unit = _units.instance(row)
    unit.equipment_class = _classes.instance(row, len(_units.fields))
    unit.site = _sites.instance(row, len(_units.fields) + len(_classes.fields))
    return unit


def _log(
    equipment: Equipment,
    *,
    actor: Actor,
    kind: str,
    now: dt.datetime,
    text: str = "",
    batch_number: str = "",
    product: str = "",
    corrects: LogbookEntry | None = None,
    reason: str = "",
) -> LogbookEntry:
    return record_create(
        LogbookEntry(
            equipment=equipment,
            kind=kind,
            at=now,
            user_id=actor.id,
            batch_number=batch_number or "",
            product=product or "",
            text=text,
            station=actor.station,
            corrects=corrects,
            reason=reason,
        ),
        actor=actor,
        reason=reason,
    )


def _move(
    unit: Equipment,
    command: str,
    *,
    actor: Actor,
    values: dict[str, Any] | None = None,
    reason: str = "",
) -> None:
    """Change the stored status as the transition table allows; refuse otherwise (EQ-01)."""
    verdict = eq.may_transition(equipment_view(unit), command)
    if not verdict.allowed:
        raise EquipmentRefused(verdict)
    t = eq.TRANSITIONS[command]
    if t.reason_required and not reason.strip():
        raise _refuse("REASON_REQUIRED", f"Give a reason to {eq.COMMAND_WORDS[command]}.")
    record_update(
        unit, actor=actor, values={"status": t.target, **(values or {})}, action=command, reason=reason
    )


def _person(actor: Actor) -> int:
    if actor.id is None:
        raise _refuse(
            "PERSON_REQUIRED", "Equipment records are written by people, each under their own name."
        )
    return actor.id


# --- master data ------------------------------------------------------------------------


def equipment_class_create(
    *,
    actor: Actor,
    code: str,
    name: str,
    dirty_hold_hours: int | None = None,
    clean_hold_hours: int | None = None,
    is_scale: bool = False,
    reason: str = "",
) -> EquipmentClass:
    """A kind of equipment with its validated hold times (EQ-02)."""
    with transaction.atomic():
        if EquipmentClass.objects.filter(code=code).exists():
            raise _refuse("CODE_TAKEN", f"An equipment class {code} exists already.")
        return record_create(
            EquipmentClass(
                code=code,
                name=_text(name, 200),
                dirty_hold_hours=dirty_hold_hours,
                clean_hold_hours=clean_hold_hours,
                is_scale=is_scale,
            ),
            actor=actor,
            reason=reason,
        )


def equipment_create(
    *,
    actor: Actor,
    site: Site,
    code: str,
    name: str,
    equipment_class: EquipmentClass,
    calibration_due_at: dt.datetime | None = None,
    maintenance_due_at: dt.datetime | None = None,
    host: str = "",
    port: int | None = None,
    capacity: Decimal | None = None,
    minimum_weight: Decimal | None = None,
    unit: str = "",
    readability: Decimal | None = None,
    simulated: bool = False,
    reason: str = "",
) -> Equipment:
    """Register a unit. It starts dirty: nothing is used before a cleaning is recorded."""
    code = normalise_code(code)
    if not code:
        raise _refuse("CODE_REQUIRED", "A unit needs the code on its label.")
    with transaction.atomic():
        if Equipment.objects.filter(code=code).exists():
            raise _refuse("CODE_TAKEN", f"Equipment {code} exists already.")
        unit_ = record_create(
            Equipment(
                site=site,
                code=code,
                name=_text(name, 200),
                equipment_class=equipment_class,
                status=EquipmentStatus.DIRTY,
                calibration_due_at=calibration_due_at,
                maintenance_due_at=maintenance_due_at,
                host=host,
                port=port,
                capacity=capacity,
                minimum_weight=minimum_weight,
                readability=readability,
                unit=unit,
                simulated=simulated,
            ),
            actor=actor,
            reason=reason,
        )
        _log(unit_, actor=actor, kind=LogbookKind.NOTE, now=timezone.now(), text="Registered; to be cleaned.")
        return unit_


# --- use by a batch (the equipment identification step) -----------------------------------


def equipment_claim(
    *,
    actor: Actor,
    code: str,
    batch_number: str,
    product: str,
    required_class: str | None = None,
    step: str = "",
) -> Equipment:
    """Put the scanned unit in use for ``batch_number`` if the gate allows it now (EQ-01, EQ-02, EQ-04, EQ-05).

    Locks the unit's row. Refuses dirty, expired-clean, busy, overdue, out of
    service or wrong-class equipment with every reason. Writes status in use,
    the batch, and the logbook's use-start line (LOG-02). The same batch
    scanning its own unit again changes nothing and writes nothing.
    """
    with transaction.atomic():
        unit = _locked(code)
        now = timezone.now()
        verdict = eq.may_use(equipment_view(unit), now, batch_number, required_class, site_tz(unit.site))
        if not verdict.allowed:
            raise EquipmentRefused(verdict)
        if unit.status == EquipmentStatus.IN_USE:
            return unit  # re-scan by the same batch
        _move(
            unit,
            "claim",
            actor=actor,
            values={
                "current_batch": batch_number,
                "in_use_since": now,
                "last_batch": batch_number,
                "last_product": product[:200],
            },
        )
        _log(
            unit,
            actor=actor,
            kind=LogbookKind.USE_START,
            now=now,
            batch_number=batch_number,
            product=product[:200],
            text=f"Step: {step}" if step else "",
        )
        return unit


def equipment_release(*, actor: Actor, code: str, batch_number: str, step: str = "") -> Equipment:
    """End ``batch_number``'s use of the unit: it is dirty from now on, and its dirty hold starts (EQ-02, LOG-02)."""
    with transaction.atomic():
        unit = _locked(code)
        if unit.status != EquipmentStatus.IN_USE or unit.current_batch != batch_number:
            raise _refuse(
                "NOT_IN_USE_BY_BATCH",
                f"{equipment_view(unit).label} is not in use by batch {batch_number}: there is nothing to release.",
            )
        now = timezone.now()
        _move(
            unit,
            "release",
            actor=actor,
            values={"current_batch": None, "in_use_since": None, "last_used_end": now},
        )
        _log(
            unit,
            actor=actor,
            kind=LogbookKind.USE_END,
            now=now,
            batch_number=batch_number,
            product=unit.last_product,
            text=f"Step: {step}" if step else "",
        )
        return unit


# --- what the machine reports of itself ------------------------------------------------------


# The gateway's parameter names for a unit's own state (TagSpec.name): PackML StateCurrent and
# UnitModeCurrent, as OPC 30050 and PackTags number them.
MACHINE_STATE, MACHINE_MODE = "packml_state", "packml_mode"


def machine_report(
    *,
    actor: Actor,
    code: str,
    at: dt.datetime,
    state: int | None = None,
    mode: int | None = None,
    known: bool = True,
) -> bool:
    """What the unit's PLC reports of itself, from the gateway: kept when it changes (EQ-01).

    ``state`` or ``mode`` None leaves that one as it was; ``known`` False (the gateway lost the
    connection, or the value is Bad) keeps the last report but marks it unknown, which the
    claim gate refuses. A report older than the one kept changes nothing (a replay after a
    gateway restart). Returns whether anything was written; every change is audited under the
    gateway's account, so the unit's history shows when the machine said it was held.
    """
    with transaction.atomic():
        unit = _locked(code)
        if unit.machine_reported_at is not None and at < unit.machine_reported_at:
            return False
        values: dict[str, Any] = {"machine_known": known}
        if known and state is not None:
            values["machine_state"] = state
        if known and mode is not None:
            values["machine_mode"] = mode
        if unit.machine_reported_at is not None and all(getattr(unit, k) == v for k, v in values.items()):
            return False
        record_update(
            unit, actor=actor, values={**values, "machine_reported_at": at}, action="machine_report"
        )
    return True


# --- cleaning ------------------------------------------------------------------------------


@registered_station_only
def cleaning_start(*, actor: Actor, code: str, text: str = "") -> Equipment:
    """Cleaning begins. A dirty hold already exceeded is written into the logbook line (EQ-02)."""
    _person(actor)
    with transaction.atomic():
        unit = _locked(code)
        now = timezone.now()
        view = equipment_view(unit)
        note = _text(text)
        hold, until = view.equipment_class.dirty_hold, eq.dirty_hold_until(view)
        if hold is not None and until is not None and now >= until:
            ended = eq.at(until, now, site_tz(unit.site))
            note = f"Dirty hold of {eq.span(hold)} exceeded: it ended at {ended}. {note}".strip()
        _move(unit, "cleaning_start", actor=actor)
        _log(
            unit, actor=actor, kind=LogbookKind.CLEANING_START, now=now, text=note, product=unit.last_product
        )
        return unit


@registered_station_only
def cleaning_end(*, actor: Actor, code: str, text: str = "") -> Equipment:
    """Cleaning done: the unit is clean from now on and its clean hold starts (EQ-02, LOG-01)."""
    _person(actor)
    with transaction.atomic():
        unit = _locked(code)
        now = timezone.now()
        _move(unit, "cleaning_end", actor=actor, values={"cleaned_at": now, "status_reason": ""})
        _log(unit, actor=actor, kind=LogbookKind.CLEANING_END, now=now, text=_text(text))
        return unit


# --- maintenance, calibration, status ---------------------------------------------------------


@registered_station_only
def maintenance_start(*, actor: Actor, code: str, reason: str) -> Equipment:
    """The unit goes into maintenance, with what is to be done (EQ-04)."""
    _person(actor)
    with transaction.atomic():
        unit = _locked(code)
        now = timezone.now()
        _move(unit, "maintenance_start", actor=actor, values={"status_reason": _text(reason)}, reason=reason)
        _log(unit, actor=actor, kind=LogbookKind.MAINTENANCE, now=now, text=f"Started: {_text(reason)}")
        return unit


@registered_station_only
def maintenance_end(*, actor: Actor, code: str, text: str, next_due: dt.datetime | None = None) -> Equipment:
    """Maintenance done; the unit must be cleaned before use. ``next_due`` sets the next preventive maintenance."""
    _person(actor)
    if not text.strip():
        raise _refuse("TEXT_REQUIRED", "Say what was done.")
    with transaction.atomic():
        unit = _locked(code)
        now = timezone.now()
        values: dict[str, Any] = {"status_reason": ""}
        note = f"Done: {_text(text)}"
        interval = unit.equipment_class.maintenance_interval_days
        if next_due is None and interval:  # the class's maintenance interval (master data)
            next_due = now + dt.timedelta(days=interval)
        if next_due is not None:
            if next_due <= now:
                raise _refuse("DUE_IN_THE_PAST", "The next maintenance must be due after now.")
            values["maintenance_due_at"] = next_due
            note += f" Next due {eq.at(next_due, now, site_tz(unit.site))}."
        _move(unit, "maintenance_end", actor=actor, values=values)
        _log(unit, actor=actor, kind=LogbookKind.MAINTENANCE, now=now, text=note)
        return unit


@registered_station_only
def calibration_record(
    *,
    actor: Actor,
    code: str,
    passed: bool,
    next_due: dt.datetime | None,
    signer: VerifiedSigner,
    text: str = "",
) -> LogbookEntry:
    """A calibration, signed by who performed it (EQ-04, LOG-01; 21 CFR 211.68(a), 211.160(b)(4)).

    Passed: the next calibration is due at ``next_due``. Failed: the unit
    goes out of service at once. Returns the signed logbook line.
    """
    person = _person(actor)
    if signer.user.pk != person:
        raise _refuse("SIGNATURE_REQUIRED", "Sign the calibration with your own user ID and password.")
    with transaction.atomic():
        unit = _locked(code)
        now = timezone.now()
        label = equipment_view(unit).label
        if unit.status in (EquipmentStatus.IN_USE, EquipmentStatus.CLEANING):
            raise _refuse(
                "EQUIPMENT_BUSY", f"{label} is {unit.get_status_display().lower()}: calibrate it afterwards."
            )
        tz = site_tz(unit.site)
        if passed:
            interval = unit.equipment_class.calibration_interval_days
            if next_due is None and interval:  # the class's calibration interval (master data)
                next_due = now + dt.timedelta(days=interval)
            if next_due is None or next_due <= now:
                raise _refuse("DUE_IN_THE_PAST", "A passed calibration sets the next due date, after now.")
            record_update(unit, actor=actor, values={"calibration_due_at": next_due}, action="calibrate")
            note = f"Passed. Next due {eq.at(next_due, now, tz)}. {_text(text)}".strip()
        else:
            reason = f"failed calibration: {_text(text)}".rstrip(": ")
            if unit.status != EquipmentStatus.OUT_OF_SERVICE:
                _move(
                    unit, "take_out_of_service", actor=actor, values={"status_reason": reason}, reason=reason
                )
            note = f"Failed: out of service. {_text(text)}".strip()
        entry = _log(unit, actor=actor, kind=LogbookKind.CALIBRATION, now=now, text=note)
        signature_apply(
            signer=signer,
            meaning=Meaning.PERFORMED,
            record=entry,
            content=signed_content(entry),
            actor=actor,
            comment=note,
        )
        return entry


@registered_station_only
def scale_check_record(*, actor: Actor, code: str, passed: bool, text: str = "") -> Equipment:
    """Today's check of a scale with its test weight (WD-02). Only a passed check lets it weigh today."""
    _person(actor)
    with transaction.atomic():
        unit = _locked(code)
        if not unit.equipment_class.is_scale:
            raise _refuse("NOT_A_SCALE", f"{equipment_view(unit).label} is not a scale.")
        now = timezone.now()
        record_update(
            unit,
            actor=actor,
            values={"last_check_at": now, "last_check_passed": passed},
            action="scale_check",
        )
        _log(
            unit,
            actor=actor,
            kind=LogbookKind.CHECK,
            now=now,
            text=f"{'Passed' if passed else 'Failed'}. {_text(text)}".strip(),
        )
        return unit


STATUS_COMMANDS = ("take_out_of_service", "return_to_service")


@registered_station_only
def status_set(*, actor: Actor, code: str, command: str, reason: str) -> Equipment:
    """Take a unit out of service, or return it (dirty: it is cleaned before use), with a reason."""
    _person(actor)
    if command not in STATUS_COMMANDS:
        raise _refuse("UNKNOWN_COMMAND", f"{command!r} is not a status change.")
    with transaction.atomic():
        unit = _locked(code)
        now = timezone.now()
        why = _text(reason)
        _move(
            unit,
            command,
            actor=actor,
            values={"status_reason": why if command == "take_out_of_service" else ""},
            reason=reason,
        )
        words = "Out of service" if command == "take_out_of_service" else "Back in service, to be cleaned"
        _log(unit, actor=actor, kind=LogbookKind.STATUS, now=now, text=f"{words}: {why}", reason=why)
        return unit


# --- the logbook by hand ---------------------------------------------------------------------


@registered_station_only
def logbook_note(*, actor: Actor, code: str, text: str) -> LogbookEntry:
    """A manual line in the unit's logbook (LOG-01)."""
    _person(actor)
    if not text.strip():
        raise _refuse("TEXT_REQUIRED", "Write the note first.")
    with transaction.atomic():
        unit = _locked(code)
        return _log(unit, actor=actor, kind=LogbookKind.NOTE, now=timezone.now(), text=_text(text))


@registered_station_only
def logbook_correct(
    *, actor: Actor, entry: LogbookEntry, text: str, reason: str, signer: VerifiedSigner
) -> LogbookEntry:
    """Correct a line by a new, signed line that points at it; the original stays as it was (LOG-03, invariant 3)."""
    person = _person(actor)
    if signer.user.pk != person:
        raise _refuse("SIGNATURE_REQUIRED", "Sign the correction with your own user ID and password.")
    if not text.strip() or not reason.strip():
        raise _refuse("REASON_REQUIRED", "A correction needs the corrected text and a reason.")
    with transaction.atomic():
        unit = _locked(entry.equipment.code)
        original = LogbookEntry.objects.get(pk=entry.pk, equipment=unit)
        correction = _log(
            unit,
            actor=actor,
            kind=LogbookKind.CORRECTION,
            now=timezone.now(),
            text=_text(text),
            batch_number=original.batch_number,
            product=original.product,
            corrects=original,
            reason=_text(reason),
        )
        signature_apply(
            signer=signer,
            meaning=Meaning.PERFORMED,
            record=correction,
            content=signed_content(correction),
            actor=actor,
            comment=correction.reason,
        )
        return correction
